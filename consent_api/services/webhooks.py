"""Webhook endpoints and their delivery log (DESIGN.md §9.1, §9.6): register, change, rotate
the secret, send a test, replay from a feed cursor, retry one message, read the log.

A new endpoint starts at the feed's head: it receives events committed after its
registration, older ones only through a replay. Messages that do not come from the ledger
(policy.published, webhook.test) are owed directly when they happen; everything else is
derived from the feed by the delivery worker (services/delivery.py, services/owed.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from consent_api.domain.clock import format_ts, parse_ts
from consent_api.domain.model import PolicyVersion
from consent_api.domain.webhooks import (
    DISABLED,
    ENABLED,
    FAILED,
    PENDING,
    POLICY_PUBLISHED,
    ROTATION_OVERLAP,
    SUBJECT_ERASED,
    TYPES,
    WEBHOOK_TEST,
    message_body,
    message_id,
    new_secret,
    new_webhook_id,
    wants,
)
from consent_api.errors import Conflict, Invalid, NotFound
from consent_api.outbound import addresses
from consent_api.services.changes import decode_position, encode_position
from consent_api.services.deps import Deps
from consent_api.services.pages import Page, check_limit, decode_cursor, encode_cursor, keyed_page
from consent_api.store.delivery import Attempt, Message, Secret, Webhook, scheduled

MAX_WEBHOOKS = 50  # per tenant: each adds a consumer of the feed to every worker round
STATUSES = (PENDING, "delivered", FAILED)


@dataclass(frozen=True)
class Created:
    webhook: Webhook
    secret: str  # shown once


def check_url(deps: Deps, url: str) -> None:
    try:
        addresses.check(url, deps.webhooks.allow_private)
    except addresses.Refused as exc:
        raise Invalid.field("url", str(exc)) from exc


def _check_filters(deps: Deps, tenant_id: str, types: list[str] | None, purposes: list[str] | None) -> None:
    errors = {f"types.{i}": [f"unknown type {t!r}"] for i, t in enumerate(types or []) if t not in TYPES}
    if purposes:
        known = {p.key for p in deps.store.list_purposes(tenant_id)}
        errors.update({f"purposes.{i}": [f"unknown purpose {p!r}"] for i, p in enumerate(purposes) if p not in known})
    if errors:
        raise Invalid("unknown types or purposes: " + ", ".join(sorted(errors)), errors=errors)


def _tuple(values: list[str] | None) -> tuple[str, ...] | None:
    return tuple(dict.fromkeys(values)) if values is not None else None


def create(deps: Deps, tenant_id: str, url: str, types: list[str] | None = None,
           purposes: list[str] | None = None, description: str | None = None) -> Created:
    """Register an endpoint; its secret is shown only in this answer."""
    check_url(deps, url)
    _check_filters(deps, tenant_id, types, purposes)
    if deps.store.count_webhooks(tenant_id) >= MAX_WEBHOOKS:
        raise Conflict(f"a tenant has at most {MAX_WEBHOOKS} webhooks; delete one first")
    now = deps.clock()
    secret = new_secret()
    webhook = Webhook(
        id=new_webhook_id(), tenant_id=tenant_id, url=url, types=_tuple(types), purposes=_tuple(purposes),
        description=description, status=ENABLED, secrets=(Secret(secret, now),), created_at=now,
        updated_at=now, cursor=deps.store.feed_head(tenant_id))
    deps.store.add_webhook(webhook)
    return Created(webhook, secret)


def get(deps: Deps, tenant_id: str, webhook_id: str) -> Webhook:
    webhook = deps.store.get_webhook(tenant_id, webhook_id)
    if webhook is None:
        raise NotFound(f"unknown webhook {webhook_id!r}")
    return webhook


def list_webhooks(deps: Deps, tenant_id: str, cursor: str | None, limit: int | None) -> Page[Webhook]:
    return keyed_page(lambda after, n: deps.store.list_webhooks(tenant_id, after, n), cursor, limit,
                      key=lambda w: w.id)


def update(deps: Deps, tenant_id: str, webhook_id: str, changes: dict[str, Any]) -> Webhook:
    """PATCH: url, types, purposes, description, status. Enabling a disabled endpoint makes its
    pending messages due at once and forgets its run of failures."""
    current = get(deps, tenant_id, webhook_id)
    if "url" in changes:
        check_url(deps, changes["url"])
    _check_filters(deps, tenant_id, changes.get("types"), changes.get("purposes"))
    now = deps.clock()
    fields: dict[str, Any] = {k: v for k, v in changes.items() if k in ("url", "description", "status")}
    for name in ("types", "purposes"):
        if name in changes:
            fields[name] = _tuple(changes[name])
    if fields.get("status") == ENABLED and current.status != ENABLED:
        fields.update(failing_since=None, disabled_at=None)
    elif fields.get("status") == DISABLED and current.status != DISABLED:
        fields["disabled_at"] = now
    fields["updated_at"] = now
    updated = deps.store.update_webhook(tenant_id, webhook_id, fields)
    if updated is None:
        raise NotFound(f"unknown webhook {webhook_id!r}")
    if fields.get("status") == ENABLED and current.status != ENABLED:
        deps.store.reschedule(tenant_id, webhook_id, now)
    return updated


def delete(deps: Deps, tenant_id: str, webhook_id: str) -> None:
    """Remove the endpoint and what it is still owed; its delivery log stays for audits."""
    if not deps.store.delete_webhook(tenant_id, webhook_id):
        raise NotFound(f"unknown webhook {webhook_id!r}")


def rotate_secret(deps: Deps, tenant_id: str, webhook_id: str) -> Created:
    """A new secret signs from now on; the previous one signs too for ROTATION_OVERLAP (both
    signatures go in webhook-signature), so receivers can switch without losing a message."""
    current = get(deps, tenant_id, webhook_id)
    now = deps.clock()
    secret = new_secret()
    kept = tuple(replace(s, expires_at=s.expires_at or now + ROTATION_OVERLAP) for s in current.secrets
                 if s.expires_at is None or s.expires_at > now)
    updated = deps.store.update_webhook(tenant_id, webhook_id,
                                        {"secrets": (Secret(secret, now), *kept), "updated_at": now})
    if updated is None:
        raise NotFound(f"unknown webhook {webhook_id!r}")
    return Created(updated, secret)


def active_secrets(webhook: Webhook, now: datetime) -> list[str]:
    return [s.value for s in webhook.secrets if s.expires_at is None or s.expires_at > now]


# --- messages not from the ledger ------------------------------------------------------------------

def direct_message(deps: Deps, webhook: Webhook, type_: str, key: str, data: dict[str, Any],
                   at: datetime) -> Message:
    now = deps.clock()
    return Message(tenant_id=webhook.tenant_id, webhook_id=webhook.id, id=message_id(webhook.id, key), type=type_,
                   body=message_body(type_, format_ts(at), data), order=deps.store.feed_head(webhook.tenant_id),
                   created_at=now, event_at=at, next_attempt_at=now)


def send_test(deps: Deps, tenant_id: str, webhook_id: str) -> Attempt:
    """Owe the endpoint a webhook.test message; the answer is its pending log row."""
    webhook = get(deps, tenant_id, webhook_id)
    message = direct_message(deps, webhook, WEBHOOK_TEST, f"test:{uuid.uuid4()}",
                             {"tenant_id": tenant_id, "webhook_id": webhook_id}, deps.clock())
    deps.store.enqueue(tenant_id, webhook_id, [message])
    return scheduled(message)


def policy_published(deps: Deps, tenant_id: str, policy: PolicyVersion) -> None:
    """Owe policy.published to every enabled endpoint of the tenant that wants it."""
    at = policy.published_at or deps.clock()
    data = {"tenant_id": tenant_id, "policy": policy.to_dict()}
    after = None
    while page := deps.store.list_webhooks(tenant_id, after, 100):
        for webhook in page:
            if webhook.status == ENABLED and wants(webhook.types, webhook.purposes, POLICY_PUBLISHED):
                message = direct_message(deps, webhook, POLICY_PUBLISHED, f"policy:{policy.version}", data, at)
                deps.store.enqueue(tenant_id, webhook.id, [message])
        after = page[-1].id


def note_erasure(deps: Deps, tenant_id: str, subject_ref: str, subject_id: str, at: datetime) -> None:
    """Before an erasure: the ledger keeps no id afterwards, but subject.erased must name the
    subject. Kept (for at most owed.ERASURES_KEPT) only when an enabled endpoint of the
    tenant takes subject.erased; otherwise the id goes with the erasure, as before."""
    after = None
    while page := deps.store.list_webhooks(tenant_id, after, 100):
        if any(w.status == ENABLED and wants(w.types, w.purposes, SUBJECT_ERASED) for w in page):
            deps.store.note_erasure(tenant_id, subject_ref, subject_id, at)
            return
        after = page[-1].id


def redact_erased(deps: Deps, tenant_id: str, subject_ref: str) -> None:
    """After an erasure: no stored message keeps the subject's id or the free text of its
    requests, pending ones included (they go out redacted), but for subject.erased itself until
    it is delivered."""
    if deps.store.count_webhooks(tenant_id):
        deps.store.redact_messages(tenant_id, subject_ref)


# --- replay, retry, the log ---------------------------------------------------------------------------

def replay(deps: Deps, tenant_id: str, webhook_id: str, after: str | None) -> tuple[str, str]:
    """Send again every event after the cursor (None: the feed's start) that the endpoint's
    filters take, with the webhook-id each had; events it was never sent go out too. Answers
    the cursors replayed from and up to."""
    position = decode_position(deps, tenant_id, after)
    webhook = get(deps, tenant_id, webhook_id)
    start = min(position, webhook.cursor)  # never skip what the endpoint has not been sent yet
    until = max(webhook.cursor, webhook.replay_until or 0)
    deps.store.update_webhook(tenant_id, webhook_id, {"cursor": start, "replay_until": until,
                                                      "updated_at": deps.clock()})
    return encode_position(tenant_id, start), encode_position(tenant_id, until)


def retry(deps: Deps, tenant_id: str, webhook_id: str, delivery_id: str) -> Attempt:
    """Send the message of a log row again now, with its webhook-id; the answer is the new
    pending row (or the one already scheduled)."""
    get(deps, tenant_id, webhook_id)
    row = deps.store.get_attempt(tenant_id, webhook_id, delivery_id)
    if row is None or row.message_id is None:
        raise NotFound(f"unknown delivery {delivery_id!r}")
    message = deps.store.get_message(tenant_id, webhook_id, row.message_id)
    if message is None:
        raise NotFound(f"the message of delivery {delivery_id!r} is no longer kept (its webhook was deleted)")
    now = deps.clock()
    if message.status == PENDING:
        deps.store.reschedule(tenant_id, webhook_id, now, message.id)
    else:
        deps.store.enqueue(tenant_id, webhook_id, [replace(message, next_attempt_at=now)], resend_upto=message.order)
    current = deps.store.get_message(tenant_id, webhook_id, message.id)
    assert current is not None
    return scheduled(current)


def deliveries(deps: Deps, tenant_id: str, webhook_id: str, status: str | None, cursor: str | None,
               limit: int | None) -> Page[Attempt]:
    """The endpoint's delivery log, newest first."""
    get(deps, tenant_id, webhook_id)
    limit = check_limit(limit)
    if status is not None and status not in STATUSES:
        raise Invalid.field("status", f"must be one of {', '.join(STATUSES)}")
    before = None
    if cursor:
        value = decode_cursor(cursor)
        try:
            before = (parse_ts(value[0]), value[1]) if isinstance(value, list) and len(value) == 2 \
                and all(isinstance(v, str) for v in value) else None
        except ValueError:
            before = None
        if before is None:
            raise Invalid.field("cursor", "not a cursor returned by this API")
    rows = deps.store.list_attempts(tenant_id, webhook_id, status, before, limit + 1)
    more = len(rows) > limit
    last = rows[limit - 1] if more else None
    return Page(rows[:limit], encode_cursor([format_ts(last.created_at), last.id]) if last else None)


def export_deliveries(deps: Deps, tenant_id: str, since: datetime | None, until: datetime | None,
                      webhook_id: str | None) -> Iterator[Attempt]:
    """Every log row of the tenant, oldest first: when each message reached each endpoint."""
    return deps.store.export_attempts(tenant_id, since, until, webhook_id)


# --- what /metrics shows -----------------------------------------------------------------------------

MAX_LAG_LABELS = 100  # endpoints named in the lag metric: the ones furthest behind


def delivery_counts(deps: Deps) -> dict[str, int]:
    """Attempts so far by status (delivered, failed), every tenant together."""
    return dict(deps.store.delivery_counts().by_status)


def lags(deps: Deps, limit: int = MAX_LAG_LABELS) -> list[tuple[str, float]]:
    """(webhook id, seconds) of the enabled endpoints furthest behind: the age of the oldest
    event not yet delivered to each, whether already owed or still to be read from the feed."""
    now = deps.clock()
    found = [(webhook.id, lag(deps, webhook, now)) for webhook in deps.store.enabled_webhooks()]
    return sorted(found, key=lambda item: -item[1])[:limit]


def lag(deps: Deps, webhook: Webhook, now: datetime) -> float:
    """Seconds since the oldest event not yet delivered to the endpoint, owed or still unread
    in the feed; 0 when it is up to date."""
    oldest = [t for t in (deps.store.oldest_pending(webhook.tenant_id, webhook.id),) if t is not None]
    unread = deps.store.feed_page(webhook.tenant_id, webhook.cursor, 1).events
    if unread:
        oldest.append(parse_ts(unread[0]["recorded_at"]))
    return max(0.0, (now - min(oldest)).total_seconds()) if oldest else 0.0
