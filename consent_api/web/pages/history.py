"""A subject's ledger events as sentences a person reads, in zh-CN and en:

    2026-03-01 14:02  您在 iOS「设置」中关闭了「个性化推送」
    2026-03-01 14:02  You turned off “Personalised push” in the iOS app (设置)

The texts are the ``history`` catalog (locales/history.*.json), so any page set can show a
timeline; purpose titles come from the tenant's catalog in the page's locale.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from consent_api.domain.clock import parse_ts
from consent_api.domain.model import Purpose
from consent_api.services.links import LINK_POINT
from consent_api.web.pages import i18n

CATALOGS = ("history", "common")
_LATIN_THEN_HAN = re.compile(r"([A-Za-z])([\u3400-\u9fff])")
_HAN_THEN_LATIN = re.compile(r"([\u3400-\u9fff])([A-Za-z])")
# Collection points with words of their own in the history catalog (history.point.*); any
# other is shown as the app sent it. A decision carried over from an anonymous visitor has
# "link:<event id>" (services/links.py): shown as "link".
KNOWN_POINTS = ("privacy_center", "scheduler", "console", "settings", "settings/privacy", "account/privacy",
                "onboarding", "first-launch", "banner", "link")


@dataclass(frozen=True)
class Line:
    event_id: str
    at: datetime
    text: str


def spaced(text: str) -> str:
    """A space between Chinese characters and Latin words, as Chinese typesetting does
    (您在 iOS「设置」中); none beside Chinese punctuation, none in dates (2026年10月27日)."""
    return _HAN_THEN_LATIN.sub(r"\1 \2", _LATIN_THEN_HAN.sub(r"\1 \2", text))


def due_day(due_at: datetime | str) -> date:
    """The last day to answer, in Shanghai (due_at is 24:00 of it)."""
    moment = parse_ts(due_at) if isinstance(due_at, str) else due_at
    return i18n.local(moment - timedelta(microseconds=1)).date()


def purpose_title(purposes: Mapping[str, Purpose], key: str | None, locale: str) -> str:
    purpose = purposes.get(key or "")
    if purpose is None:
        return key or ""
    for wanted in (locale, "en", "zh-CN"):
        if purpose.title.get(wanted):
            return purpose.title[wanted]
    return next(iter(purpose.title.values()), purpose.key)


def point_name(point: str, locale: str) -> str:
    """A collection point in words of the locale when it is a known one; else as sent."""
    known = "link" if point.startswith(LINK_POINT) else point
    return i18n.text(f"history.point.{known}", locale, CATALOGS) if known in KNOWN_POINTS else point


def sentence(event: dict[str, Any], purposes: Mapping[str, Purpose], locale: str) -> str:
    def t(key: str, **params: Any) -> str:
        return i18n.text(key, locale, CATALOGS, **params)

    action = event.get("action")
    actor = t(f"history.actor.{(event.get('actor') or {}).get('type') or 'self'}")
    source = event.get("source") or {}
    channel = source.get("channel") or "server"
    where = t(f"history.where.{channel}")
    point = source.get("collection_point")
    if point:
        where = t("history.where_point", where=where, point=point_name(point, locale))
    if action in ("grant", "withdraw", "deny", "prompt"):
        title = purpose_title(purposes, event.get("purpose"), locale)
        text = t(f"history.{action}", actor=actor, where=where, purpose=title)
        if action == "grant" and event.get("separate"):
            text += t("history.separate")
    elif action == "erase":
        text = t("history.erase")
    elif str(action).startswith("request_"):
        kind = t(f"request.type.{event.get('request_type')}")
        due = i18n.format_date(due_day(event["due_at"]), locale) if event.get("due_at") else ""
        if event.get("notice"):
            text = t(f"history.notice.{event['notice']}", type=kind, due=due)
        elif action == "request_closed":
            text = t(f"history.request_closed.{event.get('status')}", type=kind)
        else:
            text = t(f"history.{action}", actor=actor, type=kind, due=due)
    else:
        text = str(action)
    return spaced(text) if locale == "zh-CN" else text


def lines(events: Iterable[dict[str, Any]], purposes: Mapping[str, Purpose], locale: str) -> list[Line]:
    """The events as sentences, newest first."""
    return [Line(e["event_id"], parse_ts(e["recorded_at"]), sentence(e, purposes, locale))
            for e in sorted(events, key=lambda e: e["seq"], reverse=True)]
