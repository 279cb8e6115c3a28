"""What a completed send comes to, as the delivery worker (services/delivery.py) records it:
the attempt's row in the endpoint's log, the message's new state (delivered; pending again,
its retry after a backoff with jitter, for at least RETRY_FOR; then failed), and the
endpoint's health: a success forgets its run of failures, failures for DISABLE_AFTER disable
it, with a webhook.disabled row in its log."""

from __future__ import annotations

import hashlib
import logging
import random
from dataclasses import dataclass, replace
from datetime import datetime

from consent_api.domain.clock import format_ts
from consent_api.domain.webhooks import (
    DELIVERED,
    DISABLE_AFTER,
    DISABLED,
    FAILED,
    PENDING,
    SUBJECT_ERASED,
    WEBHOOK_DISABLED,
    attempt_id,
    next_attempt,
    redact,
)
from consent_api.outbound import sender
from consent_api.store.delivery import Attempt, Message, Outcome, Webhook, scheduled
from consent_api.store.port import Store


@dataclass(frozen=True)
class Completed:
    """A send that has an answer (or raised), its outcome not recorded yet."""

    webhook: Webhook
    message: Message
    at: datetime
    answer: sender.Answer


log = logging.getLogger("consent_api.webhooks")


def outcome_of(d: Completed, rng: random.Random) -> Outcome:
    """The attempt's row, the message's new state and its retry's schedule, if any."""
    m, number = d.message, d.message.attempts + 1
    first = m.first_attempt_at or d.at
    ok = d.answer.ok
    retry_at = None if ok else next_attempt(number, first, d.at, rng)
    status = DELIVERED if ok else (PENDING if retry_at is not None else FAILED)
    message = replace(m, status=status, attempts=number, next_attempt_at=retry_at, first_attempt_at=first)
    if m.type == SUBJECT_ERASED and status != PENDING:
        message = replace(message, body=redact(m.body))  # the id was for the receiver, not for keeping
    attempt = Attempt(
        id=attempt_id(m.webhook_id, m.id, number), tenant_id=m.tenant_id, webhook_id=m.webhook_id,
        message_id=m.id, event_id=m.event_id, type=m.type, attempt=number, status=DELIVERED if ok else FAILED,
        created_at=m.next_attempt_at or d.at, at=d.at, response_status=d.answer.status,
        latency_ms=d.answer.latency_ms, next_attempt_at=retry_at, url=d.webhook.url,
        body_sha256=hashlib.sha256(m.body.encode("utf-8")).hexdigest())
    return Outcome(attempt, message, scheduled(message) if retry_at is not None else None)


def endpoint_health(store: Store, tenant_id: str, webhook_id: str, known: Webhook | None,
                    results: list[Completed]) -> bool:
    """A success forgets the run of failures; failures for DISABLE_AFTER disable the endpoint.
    ``known``: the endpoint as the worker last read it; ``results`` in time order. True when
    the endpoint's row changed (the worker reads the endpoints again)."""
    if known is not None and known.failing_since is None and all(d.answer.ok for d in results):
        return False  # healthy before and after: nothing to read or write
    webhook = store.get_webhook(tenant_id, webhook_id)
    if webhook is None or webhook.status == DISABLED:
        return False
    failing_since = webhook.failing_since
    for d in results:
        if d.answer.ok:
            failing_since = None
        elif failing_since is None:
            failing_since = d.at
        elif d.at - failing_since >= DISABLE_AFTER:
            store.update_webhook(tenant_id, webhook_id, {"status": DISABLED, "disabled_at": d.at,
                                                         "failing_since": failing_since, "updated_at": d.at})
            store.add_attempt(Attempt(
                id=attempt_id(webhook_id, WEBHOOK_DISABLED, int(d.at.timestamp())), tenant_id=tenant_id,
                webhook_id=webhook_id, message_id=None, event_id=None, type=WEBHOOK_DISABLED, attempt=0,
                status=FAILED, created_at=d.at, at=d.at, url=webhook.url))
            log.warning("webhook.disabled", extra={"tenant_id": tenant_id, "webhook_id": webhook_id,
                                                   "failing_since": format_ts(failing_since)})
            return True
    if failing_since != webhook.failing_since:
        store.update_webhook(tenant_id, webhook_id, {"failing_since": failing_since})
        return True
    return False
