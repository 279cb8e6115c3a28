"""Request schemas and response shapers of the change feed and webhooks (DESIGN.md §9.1)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

from consent_api.domain.clock import format_ts
from consent_api.domain.model import PURPOSE_KEY
from consent_api.domain.webhooks import DISABLED, ENABLED, TYPES
from consent_api.outbound.addresses import MAX_URL_LENGTH
from consent_api.store.delivery import Attempt, Webhook

_Url = fields.String(validate=validate.Length(min=1, max=MAX_URL_LENGTH))
_Types = fields.List(fields.String(validate=validate.OneOf(TYPES)), allow_none=True,
                     validate=validate.Length(min=1, max=len(TYPES)))
_Purposes = fields.List(fields.String(validate=validate.Regexp(PURPOSE_KEY)), allow_none=True,
                        validate=validate.Length(min=1, max=200))
_Description = fields.String(allow_none=True, validate=validate.Length(max=500))


class WebhookIn(Schema):
    url = fields.String(required=True, validate=validate.Length(min=1, max=MAX_URL_LENGTH))
    types = fields.List(fields.String(validate=validate.OneOf(TYPES)), allow_none=True, load_default=None,
                        validate=validate.Length(min=1, max=len(TYPES)))
    purposes = fields.List(fields.String(validate=validate.Regexp(PURPOSE_KEY)), allow_none=True,
                           load_default=None, validate=validate.Length(min=1, max=200))
    description = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=500))


class WebhookPatchIn(Schema):
    url = _Url
    types = _Types
    purposes = _Purposes
    description = _Description
    status = fields.String(validate=validate.OneOf([ENABLED, DISABLED]))


class ReplayIn(Schema):
    after = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=200))


def _ts(value: Any) -> str | None:
    return format_ts(value) if value is not None else None


def webhook_out(webhook: Webhook, secret: str | None = None) -> dict[str, Any]:
    body = {
        "id": webhook.id, "url": webhook.url,
        "types": list(webhook.types) if webhook.types is not None else None,
        "purposes": list(webhook.purposes) if webhook.purposes is not None else None,
        "description": webhook.description, "status": webhook.status,
        "created_at": format_ts(webhook.created_at), "updated_at": format_ts(webhook.updated_at),
        "failing_since": _ts(webhook.failing_since), "disabled_at": _ts(webhook.disabled_at),
    }
    if secret is not None:
        body["secret"] = secret
    return body


def attempt_out(row: Attempt) -> dict[str, Any]:
    return {
        "id": row.id, "webhook_id": row.webhook_id, "message_id": row.message_id, "event_id": row.event_id,
        "type": row.type, "attempt": row.attempt, "status": row.status, "response_status": row.response_status,
        "latency_ms": row.latency_ms, "at": format_ts(row.at), "next_attempt_at": _ts(row.next_attempt_at),
        "url": row.url, "body_sha256": row.body_sha256,
    }
