"""Webhooks in domain words: which message types a ledger event makes, the Standard Webhooks
ids and secrets, and the retry schedule (DESIGN.md §9.1 and §9.6).

    event action (notice)                   message type        data
    grant, deny, withdraw                   consent.changed     {tenant_id, subject_id, event, state}
    erase                                   subject.erased      {tenant_id, subject_id}
    request_opened                          request.created     {tenant_id, subject_id, request}
    request_updated, request_closed (null)  request.updated     {tenant_id, subject_id, request}
    request_updated ("due_soon")            request.due_soon    {tenant_id, subject_id, request}
    request_updated ("overdue")             request.overdue     {tenant_id, subject_id, request}
    prompt                                  (none)
    (a policy is published)                 policy.published    {tenant_id, policy}
    (POST /v1/webhooks/{id}/test)           webhook.test        {tenant_id, webhook_id}

``request`` is the rights request as GET /v1/requests/{id} answers it when the message is made
(free text included: what a downstream ticketing system acts on; the ledger itself never holds
it). After an erasure, stored messages of the subject keep neither its id nor that free text
(``redact``), except a subject.erased message not yet delivered, which must name the subject.

Retries: a failed attempt is retried after RETRY_STEPS (each drawn between half and all of the
step), for at least RETRY_FOR after the message's first attempt; then the message is failed.
An endpoint whose attempts have all failed for DISABLE_AFTER is disabled.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

CONSENT_CHANGED = "consent.changed"
SUBJECT_ERASED = "subject.erased"
POLICY_PUBLISHED = "policy.published"
REQUEST_CREATED = "request.created"
REQUEST_UPDATED = "request.updated"
REQUEST_DUE_SOON = "request.due_soon"
REQUEST_OVERDUE = "request.overdue"
WEBHOOK_TEST = "webhook.test"
TYPES = (CONSENT_CHANGED, SUBJECT_ERASED, POLICY_PUBLISHED, REQUEST_CREATED, REQUEST_UPDATED,
         REQUEST_DUE_SOON, REQUEST_OVERDUE, WEBHOOK_TEST)
# Not a message: the delivery log's note that the worker disabled an endpoint.
WEBHOOK_DISABLED = "webhook.disabled"

# The ledger action that makes each type (events of other actions, prompts, make none); a
# scheduler's notice on a request_updated event makes its own type.
TYPE_OF_ACTION = {
    "grant": CONSENT_CHANGED, "deny": CONSENT_CHANGED, "withdraw": CONSENT_CHANGED,
    "erase": SUBJECT_ERASED,
    "request_opened": REQUEST_CREATED, "request_updated": REQUEST_UPDATED, "request_closed": REQUEST_UPDATED,
}
TYPE_OF_NOTICE = {"due_soon": REQUEST_DUE_SOON, "overdue": REQUEST_OVERDUE}
REQUEST_TYPES = (REQUEST_CREATED, REQUEST_UPDATED, REQUEST_DUE_SOON, REQUEST_OVERDUE)
# What redact() leaves out of a request object besides its subject: the free text.
REQUEST_FREE_TEXT = ("details", "note", "reason")

ENABLED = "enabled"
DISABLED = "disabled"
PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
ROTATION_OVERLAP = timedelta(hours=24)  # the old secret still signs for this long after a rotation

TIMEOUT_S = 10.0  # a 2xx within this is success
RESPONSE_READ_BYTES = 4096  # never read more of a receiver's answer
IN_FLIGHT_PER_ENDPOINT = 4
RETRY_STEPS = (timedelta(seconds=5), timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=10),
               timedelta(minutes=30), timedelta(hours=1))
RETRY_LATER = timedelta(hours=4)  # every step after RETRY_STEPS: 2 to 4 hours
RETRY_FOR = timedelta(hours=24)
DISABLE_AFTER = timedelta(days=5)


def webhook_type(event: dict[str, Any]) -> str | None:
    """The message type a ledger event makes, None for none (prompts)."""
    action = event.get("action") or ""
    if action == "request_updated" and event.get("notice") in TYPE_OF_NOTICE:
        return TYPE_OF_NOTICE[event["notice"]]
    return TYPE_OF_ACTION.get(action)


def message_body(type_: str, timestamp: str, data: dict[str, Any]) -> str:
    """A message's JSON text, as signed and sent: {type, timestamp, data}."""
    return json.dumps({"type": type_, "timestamp": timestamp, "data": data}, ensure_ascii=False,
                      separators=(",", ":"))


def redact(body: str) -> str:
    """A message's text without its subject's id and free text: data.subject_id, the event's
    subject_id and the request's subject_id, details, note and reason become null."""
    message = json.loads(body)
    data = message.get("data")
    if not isinstance(data, dict):
        return body
    if "subject_id" in data:
        data["subject_id"] = None
    for part, names in (("event", ("subject_id",)), ("request", ("subject_id", *REQUEST_FREE_TEXT))):
        inner = data.get(part)
        if isinstance(inner, dict):
            inner.update({name: None for name in names if name in inner})
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


def wants(types: Sequence[str] | None, purposes: Sequence[str] | None, type_: str,
          purpose: str | None = None) -> bool:
    """Does an endpoint subscribed to types (None: all) and purposes (None: all) want a message
    of type_? purposes filter consent.changed only."""
    if types is not None and type_ not in types:
        return False
    return type_ != CONSENT_CHANGED or purposes is None or purpose in purposes


def _digest_id(prefix: str, *parts: str) -> str:
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()
    return prefix + base64.b32encode(digest[:16]).decode("ascii").rstrip("=").lower()


def message_id(webhook_id: str, key: str) -> str:
    """The webhook-id header: the same for one endpoint and one event (or other message key)
    on every attempt and replay, so a receiver can deduplicate on it."""
    return _digest_id("msg_", webhook_id, key)


def attempt_id(webhook_id: str, message: str, attempt: int) -> str:
    """The delivery-log row of one attempt; derived, so recording it twice writes it once."""
    return _digest_id("dlv_", webhook_id, message, str(attempt))


def new_webhook_id() -> str:
    return "wh_" + secrets.token_hex(12)


def new_secret() -> str:
    """whsec_ and the base64 of 32 random bytes: the key the Standard Webhooks libraries decode."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def retry_delay(attempt: int, rng: random.Random | None = None) -> timedelta:
    """How long after failed attempt number ``attempt`` (1-based) the next one is made: the
    step, jittered to between half and all of it, so endpoints that failed together retry apart
    and no retry comes sooner than half its step (full jitter could retry at once)."""
    step = RETRY_STEPS[attempt - 1] if attempt <= len(RETRY_STEPS) else RETRY_LATER
    return step * (rng or random).uniform(0.5, 1.0)


def next_attempt(attempt: int, first_attempt_at: datetime, at: datetime,
                 rng: random.Random | None = None) -> datetime | None:
    """When to retry after failed attempt ``attempt`` made at ``at``; None once the message has
    been tried for RETRY_FOR (it is then failed)."""
    if at - first_attempt_at >= RETRY_FOR:
        return None
    return at + retry_delay(attempt, rng)


def request_of(event: dict[str, Any]) -> dict[str, Any]:
    """The request as a rights-request event states it (request_id, request_type, status,
    due_at at top level): what a message carries when the request itself cannot be read."""
    return {"id": event.get("request_id"), "subject_id": event.get("subject_id"), "type": event.get("request_type"),
            "status": event.get("status"), "due_at": event.get("due_at"), "updated_at": event.get("recorded_at")}
