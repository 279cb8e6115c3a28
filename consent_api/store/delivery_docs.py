"""Plain-dict forms of the webhook objects (store/delivery.py), shared by the adapters: times
as fixed-width RFC 3339 strings, so they sort as text in SQLite and in MongoDB alike."""

from __future__ import annotations

from dataclasses import asdict, fields
from datetime import datetime
from typing import Any

from consent_api.domain.clock import format_ts, parse_ts
from consent_api.store.delivery import Attempt, Message, Secret, Webhook

_TIMES = {"created_at", "updated_at", "failing_since", "disabled_at", "next_attempt_at",
          "first_attempt_at", "event_at", "at", "expires_at"}


def ts(value: datetime | None) -> str | None:
    return format_ts(value) if value is not None else None


def _times_out(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: ts(v) if k in _TIMES else v for k, v in doc.items()}


def _times_in(doc: dict[str, Any], names: set[str]) -> dict[str, Any]:
    return {k: (parse_ts(v) if k in _TIMES and v is not None else v) for k, v in doc.items() if k in names}


_WEBHOOK_FIELDS = {f.name for f in fields(Webhook)}
_MESSAGE_FIELDS = {f.name for f in fields(Message)}
_ATTEMPT_FIELDS = {f.name for f in fields(Attempt)}
# Message and Attempt hold only flat values: a field walk, not dataclasses.asdict, which deep-copies
# every value and cost the delivery worker a quarter of its time.
_MESSAGE_NAMES = tuple(f.name for f in fields(Message))
_ATTEMPT_NAMES = tuple(f.name for f in fields(Attempt))


def webhook_doc(webhook: Webhook) -> dict[str, Any]:
    doc = _times_out({f.name: getattr(webhook, f.name) for f in fields(Webhook)})
    doc["types"] = list(webhook.types) if webhook.types is not None else None
    doc["purposes"] = list(webhook.purposes) if webhook.purposes is not None else None
    doc["secrets"] = [_times_out(asdict(s)) for s in webhook.secrets]
    return doc


def webhook_from(doc: dict[str, Any]) -> Webhook:
    values = _times_in(doc, _WEBHOOK_FIELDS)
    values["types"] = tuple(doc["types"]) if doc.get("types") is not None else None
    values["purposes"] = tuple(doc["purposes"]) if doc.get("purposes") is not None else None
    values["secrets"] = tuple(Secret(**_times_in(s, {"value", "created_at", "expires_at"})) for s in doc["secrets"])
    return Webhook(**values)


def webhook_changes(changes: dict[str, Any]) -> dict[str, Any]:
    """update_webhook's changes in document form."""
    out = {}
    for name, value in changes.items():
        if name not in _WEBHOOK_FIELDS or name in ("id", "tenant_id"):
            raise ValueError(f"not a field an update may change: {name}")
        if name == "secrets":
            value = [_times_out(asdict(s)) for s in value]
        elif name in ("types", "purposes") and value is not None:
            value = list(value)
        elif name in _TIMES:
            value = ts(value)
        out[name] = value
    return out


def _flat(obj: Any, names: tuple[str, ...]) -> dict[str, Any]:
    out = {}
    for name in names:
        value = getattr(obj, name)
        out[name] = format_ts(value) if value is not None and name in _TIMES else value
    return out


def message_doc(message: Message) -> dict[str, Any]:
    return _flat(message, _MESSAGE_NAMES)


def message_from(doc: dict[str, Any]) -> Message:
    return Message(**_times_in(doc, _MESSAGE_FIELDS))


def attempt_doc(attempt: Attempt) -> dict[str, Any]:
    return _flat(attempt, _ATTEMPT_NAMES)


def attempt_from(doc: dict[str, Any]) -> Attempt:
    return Attempt(**_times_in(doc, _ATTEMPT_FIELDS))
