"""The Store's vocabulary for what flows out of the ledger: the change feed, webhook endpoints,
the messages owed them, the delivery log and the worker's lease (DESIGN.md §9.1).

Feed positions are integers that grow in commit order within a tenant (SQLite: the events
table's rowid, assigned by the one writer; MongoDB: a per-tenant counter, docs/scaling.md).
Each endpoint is a consumer of its tenant's feed with its own cursor: ``enqueue`` records the
messages owed for a page of the feed and moves the cursor past it together, so a crash at any
point loses nothing, and recording the same page again (message and attempt ids are derived,
not drawn) writes nothing twice.

Every tenant-owned method takes ``tenant_id`` first; the worker's global look-ups
(``enabled_webhooks``, the lease, the counters, ``delivery_marks``) name no tenant because they
serve all of them.

The worker keeps what it owes in memory between rounds and asks ``delivery_marks`` (two cheap
reads) whether to look again: the feed's mark moves with every event committed, the changes
counter with every change to what is owed that the worker did not make itself (a test message,
policy.published, a retry or reschedule, an endpoint's edit, an erasure's redaction).
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from consent_api.domain.webhooks import PENDING, SUBJECT_ERASED, attempt_id, redact

CHANGES = "changes"  # the counter delivery_marks reads besides the feed (not a status)


@dataclass(frozen=True)
class FeedPage:
    """Events after a position, in commit order, each with subject_id filled in (None once
    erased), and ``end``: where the next page starts (past gaps the page skipped)."""

    events: list[dict[str, Any]]
    positions: list[int]
    end: int


@dataclass(frozen=True)
class Secret:
    value: str  # whsec_...
    created_at: datetime
    expires_at: datetime | None = None  # set when a rotation replaced it: signs until then


@dataclass(frozen=True)
class Webhook:
    id: str
    tenant_id: str
    url: str
    types: tuple[str, ...] | None  # None: every type
    purposes: tuple[str, ...] | None  # None: every purpose (consent.changed only)
    description: str | None
    status: str  # enabled | disabled
    secrets: tuple[Secret, ...]  # newest first
    created_at: datetime
    updated_at: datetime
    cursor: int  # feed position up to which messages are recorded
    replay_until: int | None = None  # while cursor < this, derived messages are sent again
    failing_since: datetime | None = None  # first failure since the last success
    disabled_at: datetime | None = None


@dataclass(frozen=True)
class Message:
    """One message owed to one endpoint: what is sent on every attempt (body, webhook-id)."""

    tenant_id: str
    webhook_id: str
    id: str  # msg_...: the webhook-id header
    type: str
    body: str  # the JSON text signed and sent
    order: int  # delivery order: the event's feed position (others: the feed head when enqueued)
    created_at: datetime
    event_at: datetime  # when what it tells of happened (the event's recorded_at): lag is measured from it
    subject_ref: str | None = None  # messages of one subject go out one at a time, in order
    event_id: str | None = None
    status: str = "pending"  # pending | delivered | failed
    attempts: int = 0
    next_attempt_at: datetime | None = None
    first_attempt_at: datetime | None = None


@dataclass(frozen=True)
class Attempt:
    """A row of the delivery log: an attempt made (delivered | failed), or the next one,
    scheduled (pending). ``type`` webhook.disabled marks the worker disabling the endpoint."""

    id: str  # dlv_...
    tenant_id: str
    webhook_id: str
    message_id: str | None
    event_id: str | None
    type: str
    attempt: int
    status: str
    created_at: datetime  # when the row was written: the log's order
    at: datetime  # made at, or scheduled for
    response_status: int | None = None
    latency_ms: int | None = None
    next_attempt_at: datetime | None = None
    url: str | None = None
    body_sha256: str | None = None


@dataclass(frozen=True)
class Outcome:
    """What one attempt changed: its log row (made), the message after it, and the next
    attempt's row when a retry is scheduled."""

    attempt: Attempt
    message: Message
    retry: Attempt | None = None


@dataclass(frozen=True)
class Owed:
    """Messages owed to one endpoint, to record at once (``enqueue_many``): with advance=(from,
    to) the endpoint's cursor moves from ``from`` to ``to`` with them; a message whose order is
    at most resend_upto is owed again even if delivered or failed (a replay)."""

    tenant_id: str
    webhook_id: str
    messages: Sequence[Message]
    advance: tuple[int, int] | None = None
    resend_upto: int | None = None


@dataclass(frozen=True)
class Counts:
    """The worker's running totals, kept in the store so every process's /metrics agrees."""

    by_status: dict[str, int] = field(default_factory=dict)


def scheduled(message: Message) -> Attempt:
    """The log row of the message's next attempt (pending until made), due at next_attempt_at;
    its id is derived, so scheduling it twice writes one row."""
    assert message.next_attempt_at is not None
    number = message.attempts + 1
    return Attempt(id=attempt_id(message.webhook_id, message.id, number), tenant_id=message.tenant_id,
                   webhook_id=message.webhook_id, message_id=message.id, event_id=message.event_id,
                   type=message.type, attempt=number, status=PENDING, created_at=message.next_attempt_at,
                   at=message.next_attempt_at)


def owed_again(current: Message, wanted: Message) -> Message | None:
    """A replayed message: the recorded one pending again from wanted's next_attempt_at with
    wanted's body (derived anew: an erased subject's id is not sent again), its attempts counted
    on; None when it is still pending (its scheduled attempt will send it)."""
    if current.status == PENDING:
        return None
    return replace(current, status=PENDING, next_attempt_at=wanted.next_attempt_at, body=wanted.body)


def redacted(message: Message) -> Message:
    """The message as kept after its subject's erasure (domain/webhooks.redact); a pending
    subject.erased keeps the id it exists to carry (the worker drops it once delivered)."""
    if message.type == SUBJECT_ERASED and message.status == PENDING:
        return message
    body = redact(message.body)
    return message if body == message.body else replace(message, body=body)


class Deliveries(abc.ABC):
    # --- the change feed -----------------------------------------------------------------------
    @abc.abstractmethod
    def feed_page(self, tenant_id: str, after: int, limit: int) -> FeedPage:
        """Up to limit events after position ``after`` in commit order; a page stops before an
        event that may still be committed behind it (MongoDB: a young gap)."""

    @abc.abstractmethod
    def feed_head(self, tenant_id: str) -> int:
        """A position no event committed so far lies after: where a new consumer starts."""

    # --- webhook endpoints -----------------------------------------------------------------------
    @abc.abstractmethod
    def add_webhook(self, webhook: Webhook) -> None:
        """Persist a new endpoint."""

    @abc.abstractmethod
    def get_webhook(self, tenant_id: str, webhook_id: str) -> Webhook | None:
        """One endpoint of the tenant, or None."""

    @abc.abstractmethod
    def list_webhooks(self, tenant_id: str, after: str | None, limit: int) -> list[Webhook]:
        """Endpoints ordered by id, those after the given id, at most limit."""

    @abc.abstractmethod
    def count_webhooks(self, tenant_id: str) -> int:
        """How many endpoints the tenant has."""

    @abc.abstractmethod
    def update_webhook(self, tenant_id: str, webhook_id: str, changes: dict[str, Any]) -> Webhook | None:
        """Set these fields of Webhook (url, types, purposes, description, status, secrets,
        updated_at, failing_since, disabled_at, cursor, replay_until) and nothing else; None when unknown."""

    @abc.abstractmethod
    def delete_webhook(self, tenant_id: str, webhook_id: str) -> bool:
        """Remove an endpoint and the messages still owed it (its delivery log stays); False when unknown."""

    @abc.abstractmethod
    def enabled_webhooks(self) -> list[Webhook]:
        """Every enabled endpoint of every tenant (the worker's round)."""

    # --- messages owed ---------------------------------------------------------------------------
    def enqueue(self, tenant_id: str, webhook_id: str, messages: Sequence[Message], *,
                advance: tuple[int, int] | None = None, resend_upto: int | None = None) -> bool:
        """enqueue_many for one endpoint."""
        return self.enqueue_many([Owed(tenant_id, webhook_id, messages, advance, resend_upto)])[0]

    @abc.abstractmethod
    def enqueue_many(self, owed: Sequence[Owed]) -> list[bool]:
        """For each Owed, in one transaction where the store has them: record its messages, each
        with its first attempt row (pending, at its next_attempt_at), unless already recorded; a
        message whose ``order`` is at most resend_upto is owed again even if delivered or failed
        (a replay: pending once more, with a new attempt row). With advance=(from, to), move the
        endpoint's cursor from ``from`` to ``to`` in the same step (clearing replay_until once
        passed); False for that Owed, and (on SQLite) nothing of it recorded, when the cursor
        was no longer ``from``. A message of a subject_ref erased meanwhile is stored redacted
        (domain/webhooks.redact). Without advance (messages not from the feed) the changes
        counter moves."""

    @abc.abstractmethod
    def get_message(self, tenant_id: str, webhook_id: str, message_id: str) -> Message | None:
        """One message owed (or once owed) to the endpoint."""

    @abc.abstractmethod
    def pending_messages(self, tenant_id: str, webhook_id: str, limit: int) -> list[Message]:
        """The endpoint's pending messages in delivery order (order, then id), at most limit."""

    @abc.abstractmethod
    def reschedule(self, tenant_id: str, webhook_id: str, at: datetime, message_id: str | None = None) -> int:
        """Make the endpoint's pending messages (or just message_id, if pending) due at ``at``,
        moving their pending attempt rows too; how many."""

    @abc.abstractmethod
    def record_outcomes(self, outcomes: Sequence[Outcome]) -> None:
        """Store attempts made: each attempt row, its message's new state and the retry's row,
        and count them by status (``delivery_counts``)."""

    @abc.abstractmethod
    def add_attempt(self, attempt: Attempt) -> None:
        """A row of the log that no message owns (webhook.disabled)."""

    # --- the delivery log ------------------------------------------------------------------------
    @abc.abstractmethod
    def list_attempts(self, tenant_id: str, webhook_id: str, status: str | None,
                      before: tuple[datetime, str] | None, limit: int) -> list[Attempt]:
        """The endpoint's log rows, newest first (created_at, id), those before the given one."""

    @abc.abstractmethod
    def get_attempt(self, tenant_id: str, webhook_id: str, attempt_id: str) -> Attempt | None:
        """One row of the endpoint's log."""

    @abc.abstractmethod
    def export_attempts(self, tenant_id: str, since: datetime | None, until: datetime | None,
                        webhook_id: str | None) -> Iterator[Attempt]:
        """The tenant's log rows with since <= created_at < until, oldest first; streamed."""

    @abc.abstractmethod
    def oldest_pending(self, tenant_id: str, webhook_id: str) -> datetime | None:
        """event_at of the endpoint's oldest pending message (its lag), None when none."""

    @abc.abstractmethod
    def delivery_counts(self) -> Counts:
        """Attempts recorded so far, by status, every tenant together."""

    @abc.abstractmethod
    def delivery_marks(self) -> tuple[Any, int]:
        """(feed, changes): feed differs after any event is committed, in any tenant; changes
        grows whenever what is owed changes other than by the worker's enqueue with advance and
        record_outcomes (see the module docstring)."""

    # --- erasures: who was erased, for subject.erased (the ledger keeps no id) --------------------
    @abc.abstractmethod
    def note_erasure(self, tenant_id: str, subject_ref: str, subject_id: str, at: datetime) -> None:
        """Before an erasure: remember which subject id the subject_ref had, so the endpoints
        can be told; forgotten by forget_erasures once old."""

    @abc.abstractmethod
    def erased_subject(self, tenant_id: str, subject_ref: str) -> str | None:
        """The subject id noted for an erased subject_ref, while it is kept."""

    @abc.abstractmethod
    def forget_erasure(self, tenant_id: str, subject_ref: str) -> None:
        """Drop one note: every endpoint that was to be told has its subject.erased message."""

    @abc.abstractmethod
    def redact_messages(self, tenant_id: str, subject_ref: str) -> int:
        """After an erasure: rewrite every stored message of the subject_ref with its subject's
        id and free text left out (domain/webhooks.redact), except a pending subject.erased,
        which must carry the id until it is delivered; moves the changes counter; how many."""

    @abc.abstractmethod
    def forget_erasures(self, before: datetime) -> int:
        """Drop notes made before ``before``; how many."""

    # --- one worker across processes -------------------------------------------------------------
    @abc.abstractmethod
    def acquire_lease(self, name: str, holder: str, now: datetime, until: datetime) -> bool:
        """Hold (or keep holding) the named lease until ``until`` unless another holder's lease
        is still in force at ``now``; True when held."""

    @abc.abstractmethod
    def release_lease(self, name: str, holder: str) -> None:
        """Give the lease up, if held by holder."""
