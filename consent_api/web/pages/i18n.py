"""The pages' languages: text catalogs per locale, the locale a request is answered in, and
dates and times as people read them.

Catalogs are JSON files in locales/, one per page set and locale (``common.en.json``,
``privacy.zh-CN.json``…): flat keys, ``{name}`` placeholders, the same keys in every locale
(tests/web/test_pages_foundation.py holds them equal). The locale of a request is ``?lang=``
(remembered in the session), else the session's, else Accept-Language (``zh*`` is zh-CN),
else English.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

LOCALES = ("zh-CN", "en")
DEFAULT_LOCALE = "en"
LOCALE_NAMES = {"zh-CN": "中文", "en": "English"}
LOCALES_DIR = Path(__file__).with_name("locales")
# People of the privacy center and the console read times in China Standard Time, the zone
# PRC deadlines are counted in; every time on a page says so once.
PAGE_ZONE = ZoneInfo("Asia/Shanghai")
MONTHS_EN = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
             "October", "November", "December")


def normalize(tag: str | None) -> str | None:
    """One of LOCALES for a language tag a browser or a link may send, or None."""
    if not tag:
        return None
    lowered = tag.strip().lower().replace("_", "-")
    if lowered == "zh" or lowered.startswith("zh-"):
        return "zh-CN"
    if lowered == "en" or lowered.startswith("en-"):
        return "en"
    return None


def negotiate(asked: str | None, remembered: str | None, accepted: Iterable[str]) -> str:
    """The locale to answer in: ?lang=, else the session's, else the first Accept-Language tag
    (by quality) that we speak, else English."""
    for tag in (asked, remembered, *accepted):
        locale = normalize(tag)
        if locale is not None:
            return locale
    return DEFAULT_LOCALE


@cache
def catalog(name: str, locale: str) -> dict[str, str]:
    """One catalog file, read once per process."""
    path = LOCALES_DIR / f"{name}.{locale}.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ValueError(f"{path}: a catalog is a flat object of strings")
    return data


def catalog_names() -> list[str]:
    return sorted({p.name.split(".")[0] for p in LOCALES_DIR.glob("*.json")})


def text(key: str, locale: str, catalogs: Iterable[str] = ("common",), **params: Any) -> str:
    """The text of key in locale, from the first catalog holding it; English when a locale lacks
    it, the key itself when no catalog has it (a test keeps every used key defined)."""
    for wanted in (locale, DEFAULT_LOCALE):
        for name in catalogs:
            found = catalog(name, wanted).get(key)
            if found is not None:
                return found.format_map(params) if params else found
    return key


def local(moment: datetime) -> datetime:
    return moment.astimezone(PAGE_ZONE)


def format_datetime(moment: datetime, locale: str) -> str:
    """2026-03-01 14:02 in both locales: unambiguous, and how Chinese apps write it too."""
    return f"{local(moment):%Y-%m-%d %H:%M}"


def format_date(day: date, locale: str) -> str:
    """2026年10月27日 / 27 October 2026."""
    if locale == "zh-CN":
        return f"{day.year}年{day.month}月{day.day}日"
    return f"{day.day} {MONTHS_EN[day.month - 1]} {day.year}"
