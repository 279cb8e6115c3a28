"""DecisionsIn for the write path, compiled to plain checks: the document marshmallow's
``load(DecisionsIn, data)`` returns, or None whenever this cannot be sure that marshmallow
would accept it. It never refuses anything itself: a None sends the request through Flask,
where marshmallow validates it again and words every error, so error messages come from one
place. tests/web/test_fast_writes.py holds the two equal on generated documents.

marshmallow spends ~70 us on a one-decision document (nested schemas, a field object per
value); these checks take a few microseconds.
"""

from __future__ import annotations

from typing import Any

from consent_api.domain.clock import parse_rfc3339
from consent_api.domain.model import POLICY_VERSION, PURPOSE_KEY, ActorType, AgeBand, Channel, OsPermission
from consent_api.web.schemas.fields import SHA256

DECISION_KEYS = frozenset({"purpose", "granted", "separate", "os_permission"})
TOP_KEYS = frozenset({"decisions", "policy_version", "source", "locale", "actor", "age_band", "occurred_at"})
SOURCE_KEYS = frozenset({"channel", "collection_point", "ui_text_sha256", "sdk_version"})
ACTOR_KEYS = frozenset({"type", "id", "reason"})
CHANNELS = frozenset(str(c) for c in Channel)
ACTOR_TYPES = frozenset(str(a) for a in ActorType)
AGE_BANDS = frozenset(str(a) for a in AgeBand)
OS_PERMISSIONS = frozenset(str(p) for p in OsPermission)
MAX_DECISIONS = 100


def _text(value: Any, max_length: int, min_length: int = 0) -> bool:
    """A JSON string as Str(validate=Length(min, max)) takes it: no NUL."""
    return type(value) is str and min_length <= len(value) <= max_length and "\x00" not in value


def _optional_text(value: Any, max_length: int, min_length: int = 0) -> bool:
    return value is None or _text(value, max_length, min_length)


def _decision(item: Any) -> dict[str, Any] | None:
    if type(item) is not dict or not item.keys() <= DECISION_KEYS:
        return None
    purpose, granted = item.get("purpose"), item.get("granted")
    separate, os_permission = item.get("separate", False), item.get("os_permission")
    if (type(purpose) is not str or "\x00" in purpose or not PURPOSE_KEY.match(purpose)
            or type(granted) is not bool or type(separate) is not bool
            or (os_permission is not None and (type(os_permission) is not str or os_permission not in OS_PERMISSIONS))):
        return None
    return {"purpose": purpose, "granted": granted, "separate": separate, "os_permission": os_permission}


def _source(value: Any) -> dict[str, Any] | None:
    if type(value) is not dict or not value.keys() <= SOURCE_KEYS:
        return None
    channel = value.get("channel")
    if type(channel) is not str or channel not in CHANNELS:
        return None
    sha = value.get("ui_text_sha256")
    if (not _optional_text(value.get("collection_point"), 200) or not _optional_text(value.get("sdk_version"), 64)
            or (sha is not None and (type(sha) is not str or not SHA256.match(sha)))):
        return None
    return dict(value)


def _actor(value: Any) -> dict[str, Any] | None:
    if type(value) is not dict or not value.keys() <= ACTOR_KEYS:
        return None
    kind = value.get("type", "self")
    if (type(kind) is not str or kind not in ACTOR_TYPES or not _optional_text(value.get("id"), 200, 1)
            or not _optional_text(value.get("reason"), 500)):
        return None
    return {**value, "type": kind}


def decisions_in(data: Any) -> dict[str, Any] | None:
    """``schemas.load(DecisionsIn, data)`` when that would succeed and this can tell; else None."""
    if type(data) is not dict or not data.keys() <= TOP_KEYS:
        return None
    items = data.get("decisions")
    if type(items) is not list or not 1 <= len(items) <= MAX_DECISIONS:
        return None
    decisions = []
    for item in items:
        decision = _decision(item)
        if decision is None:
            return None
        decisions.append(decision)
    if len({d["purpose"] for d in decisions}) != len(decisions):
        return None
    version = data.get("policy_version")
    if type(version) is not str or "\x00" in version or not POLICY_VERSION.match(version):
        return None
    source = _source(data.get("source"))
    if source is None:
        return None
    locale = data.get("locale")
    if not _optional_text(locale, 35):
        return None
    actor = data.get("actor")
    if actor is not None:
        actor = _actor(actor)
        if actor is None:
            return None
    age_band = data.get("age_band")
    if age_band is not None and (type(age_band) is not str or age_band not in AGE_BANDS):
        return None
    occurred_at = data.get("occurred_at")
    if occurred_at is not None:
        if type(occurred_at) is not str:
            return None
        try:
            occurred_at = parse_rfc3339(occurred_at)
        except ValueError:
            return None
    return {"decisions": decisions, "policy_version": version, "source": source, "locale": locale,
            "actor": actor, "age_band": age_band, "occurred_at": occurred_at}
