"""The delivery worker: each enabled endpoint consumes its tenant's change feed, and what it is
owed is sent, signed (Standard Webhooks), at least once, in ledger order per subject.

One round, by the holder of the store's lease only:

    derive    for each endpoint, feed pages after its cursor -> the messages its filters take;
              every endpoint's messages recorded together with its cursor's move, all in one
              step (store.enqueue_many), so a crash re-derives the same messages (same ids) and
              loses none
    dispatch  per endpoint, the due messages it owes, at most IN_FLIGHT_PER_ENDPOINT at once
              and one per subject: a subject's next message waits while an older one is pending;
              while the round gathers completions (MIN_ROUND_S), a completed send's place goes
              to the endpoint's next due message of another subject
    record    each attempt's log row, the message's new state, the retry's row (backoff with
              jitter for at least RETRY_FOR, then failed); an endpoint failing for DISABLE_AFTER
              is disabled, with a webhook.disabled row in its log

What each endpoint is owed is kept in memory between rounds (``_Queue``), read from the store
when the worker starts leading, when someone else changed it (the store's changes counter:
a test message, policy.published, a retry, an endpoint's edit, an erasure), and page by page
when a backlog is larger than memory holds; the worker's own messages and outcomes update it
as they are recorded. Between rounds the worker waits for the first of: a send completing,
the store's delivery marks moving (an event committed anywhere, checked every poll_s: two
cheap reads), the next retry falling due, or IDLE_ROUND_S.

The worker's own writes skip the wait for an fsync (``durable=False`` where the store has it):
a message and its cursor's move are lost or kept together, so a lost round is derived again;
a lost outcome means one more send, which at-least-once allows.

``run_once(now)`` does a whole round from the store and waits for its sends (tests step it
with a fixed clock); ``run(stop)`` loops. Sends go to outbound/sender.py (kept-alive
connections per receiver) unless a test gives another ``send``.
"""

from __future__ import annotations

import bisect
import hashlib
import logging
import os
import queue
import random
import socket
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_all
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from standardwebhooks.webhooks import Webhook as Signer

from consent_api.domain.clock import format_ts, parse_ts
from consent_api.domain.model import SubjectRecord
from consent_api.domain.projection import apply_event
from consent_api.domain.status import Policies, PurposeState, purpose_state
from consent_api.domain.webhooks import (
    CONSENT_CHANGED,
    DELIVERED,
    DISABLE_AFTER,
    DISABLED,
    FAILED,
    IN_FLIGHT_PER_ENDPOINT,
    PENDING,
    REQUEST_TYPES,
    SUBJECT_ERASED,
    WEBHOOK_DISABLED,
    attempt_id,
    message_body,
    message_id,
    next_attempt,
    redact,
    request_of,
    wants,
    webhook_type,
)
from consent_api.outbound import sender
from consent_api.services.deps import Deps
from consent_api.services.webhooks import active_secrets
from consent_api.store.delivery import Attempt, FeedPage, Message, Outcome, Owed, Webhook, scheduled

log = logging.getLogger("consent_api.webhooks")

LEASE = "webhook-delivery"
PAGE = 500  # feed events per page
PAGES_PER_ROUND = 10  # per endpoint, so one far behind does not starve the others' sends
PENDING_SCAN = 256  # pending messages read per endpoint at a time; memory holds up to MEMORY of them
MEMORY = 2048
MIN_ROUND_S = 0.02  # between rounds: events and completions arriving together share a round and a commit;
# meanwhile a completed send's place is given to the endpoint's next due message (see _refill)
IDLE_ROUND_S = 1.0  # a round at least this often (retries falling due, time-based work)
REFRESH_S = 30.0  # what is owed is read again from the store at least this often, whatever the marks say
REQUEST_GRACE = timedelta(seconds=10)  # how long a request's event may wait for the request to be stored
SEND_THREADS = 16
ERASURES_KEPT = timedelta(days=30)  # how long subject.erased can still name the subject, at most

Send = Callable[[str, dict[str, str], bytes], sender.Answer]  # (url, headers, body) -> answer
Key = tuple[str, str]  # (tenant id, webhook id)


@dataclass
class Round:
    leader: bool = False
    derived: int = 0  # messages recorded from the feed
    sent: int = 0  # sends started
    outcomes: list[Outcome] = field(default_factory=list)  # recorded in this round


@dataclass(frozen=True)
class _Done:
    webhook: Webhook
    message: Message
    at: datetime
    answer: sender.Answer


@dataclass
class _Queue:
    """What one endpoint is owed and not sending now, as far as memory holds it: pending
    messages in delivery order. ``horizon``: the (order, id) of the last message read from the
    store when it held more than was read (messages past it may exist there, unread, so nothing
    past it is sent before the next read); None when memory holds all of them."""

    messages: dict[str, Message] = field(default_factory=dict)
    keys: list[tuple[int, str]] = field(default_factory=list)  # sorted (order, id) of messages
    horizon: tuple[int, str] | None = None
    stale: bool = True  # read again from the store before the next dispatch
    idle_until: datetime | None = None  # nothing can be sent before this (all blocked or not due)

    def put(self, message: Message) -> None:
        key = (message.order, message.id)
        if self.horizon is not None and key > self.horizon:
            return  # beyond what was read in order: the next read brings it
        if message.id not in self.messages:
            bisect.insort(self.keys, key)
        self.messages[message.id] = message
        self.idle_until = None
        if len(self.keys) > MEMORY:  # keep the oldest; the rest stays in the store for later reads
            dropped = self.keys.pop()
            del self.messages[dropped[1]]
            self.horizon = self.keys[-1]

    def take(self, message_id: str) -> None:
        message = self.messages.pop(message_id)
        del self.keys[bisect.bisect_left(self.keys, (message.order, message.id))]

    def load(self, found: list[Message], flying: set[str]) -> None:
        self.messages = {m.id: m for m in found if m.id not in flying}
        self.keys = sorted((m.order, m.id) for m in self.messages.values())
        self.horizon = (found[-1].order, found[-1].id) if len(found) >= PENDING_SCAN else None
        self.stale = False
        self.idle_until = None


class Worker:
    def __init__(self, deps: Deps, send: Send | None = None, *, holder: str | None = None,
                 rng: random.Random | None = None, threads: int = SEND_THREADS):
        self.deps = deps
        self._sender = sender.Sender(deps.webhooks.allow_private) if send is None else None
        self.send: Send = send or self._sender.post  # type: ignore[union-attr]
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.rng = rng or random.Random()
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="webhook-send")
        self._done: queue.SimpleQueue[_Done] = queue.SimpleQueue()
        self._wake = threading.Event()
        # Touched by the loop's thread only (sends report through _done):
        self._lease_until: datetime | None = None
        self._queues: dict[Key, _Queue] = {}
        self._flying: dict[Key, dict[str, Message]] = defaultdict(dict)  # sent, outcome not recorded yet
        self._completed: list[_Done] = []  # sends completed since the last record, taken off _done
        self._finished: dict[Key, int] = defaultdict(int)  # of _flying, how many are in _completed
        self._hooks: list[Webhook] | None = None  # the enabled endpoints, cursors as this worker moved them
        self._marks: tuple[Any, int] | None = None  # the store's delivery marks when last looked
        self._read_at = 0.0  # monotonic time of the last full read
        self._soon = False  # a derivation waits for something (a request being stored): look again soon
        self._erased: dict[tuple[str, str], int] = {}  # erasure notes used: (tenant, ref) -> the erase's position
        self._signers: dict[str, Signer] = {}
        self._forgot_at: datetime | None = None

    # --- a round ---------------------------------------------------------------------------------
    def run_once(self, now: datetime | None = None) -> Round:
        """A whole round at ``now``, everything read from the store first, its sends waited for
        and recorded."""
        now = now or self.deps.clock()
        self._forget_memory()
        result, futures = self._step(now)
        wait_all(futures)
        result.outcomes = self._record(now)
        return result

    def run(self, stop: threading.Event) -> None:
        """Rounds until stop is set; each send is recorded soon after it completes. On stop,
        the sends under way finish (within the send timeout), are recorded, and the lease goes."""
        while not stop.is_set():
            started = time.monotonic()
            try:
                now = self.deps.clock()
                self._record(now)
                self._step(now)
                self._refill(started + MIN_ROUND_S, stop)
            except Exception:  # noqa: BLE001 - a store outage must not end the worker: the next round retries
                log.exception("webhook round failed; retrying")
                self._forget_memory()
                stop.wait(max(0.0, MIN_ROUND_S - (time.monotonic() - started)))
            self._wait(stop)
        self._pool.shutdown(wait=True)
        try:
            self._record(self.deps.clock())
            self.deps.store.release_lease(LEASE, self.holder)
        except Exception:  # noqa: BLE001 - what was not recorded is sent again by the next holder
            log.exception("webhook worker stopping: could not record the last sends")
        self.close()

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        if self._sender is not None:
            self._sender.close()

    def _refill(self, until: float, stop: threading.Event) -> None:
        """Until ``until`` (the round's time for gathering completions into one commit): as sends
        complete, the endpoint's next due messages are sent in their place, so a fast receiver is
        not held to IN_FLIGHT_PER_ENDPOINT messages per round. A completed send counts no more
        against the endpoint's cap, but its subject's next message still waits for its outcome,
        recorded at the next round with the others."""
        while not stop.is_set():
            remaining = until - time.monotonic()
            if remaining <= 0:
                return
            if not self._wake.wait(min(remaining, self.deps.webhooks.poll_s)):
                continue  # stop is looked at again
            self._wake.clear()
            freed = self._collect()
            if not freed or self._hooks is None or self._lease_until is None:
                continue
            now = self.deps.clock()
            if now >= self._lease_until:
                return
            for webhook in self._hooks:
                if (webhook.tenant_id, webhook.id) in freed:
                    self._dispatch(webhook, now)

    def _collect(self) -> set[Key]:
        """Completed sends off the queue their threads report to; the endpoints they were for."""
        keys: set[Key] = set()
        while True:
            try:
                d = self._done.get_nowait()
            except queue.Empty:
                return keys
            key = (d.webhook.tenant_id, d.webhook.id)
            self._completed.append(d)
            self._finished[key] += 1
            keys.add(key)

    def _wait(self, stop: threading.Event) -> None:
        """Until a send completes, the store's marks move, something falls due or IDLE_ROUND_S."""
        if self._completed:
            return  # outcomes to record
        poll = self.deps.webhooks.poll_s
        limit = 0.05 if self._soon else IDLE_ROUND_S
        due = self._next_due()
        if due is not None:
            limit = min(limit, max(0.0, (due - self.deps.clock()).total_seconds()))
        deadline = time.monotonic() + limit
        while not stop.is_set() and not self._wake.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            if self._wake.wait(min(poll, remaining)):
                break
            try:
                if self.deps.store.delivery_marks() != self._marks:
                    break
            except Exception:  # noqa: BLE001 - the round that follows reports the outage
                break
        self._wake.clear()

    def _forget_memory(self) -> None:
        """Read everything from the store at the next round (a new leader, a failed round, a test's step)."""
        self._queues.clear()
        self._hooks = None
        self._marks = None

    def _lead(self, now: datetime) -> bool:
        """Hold the lease, renewing it once a third of its term has passed."""
        term = timedelta(seconds=self.deps.webhooks.lease_s)
        if self._lease_until is not None and now < self._lease_until - term * 2 / 3:
            return True
        if self.deps.store.acquire_lease(LEASE, self.holder, now, now + term):
            if self._lease_until is None or now >= self._lease_until:  # leading anew: what we knew may be old
                self._forget_memory()
            self._lease_until = now + term
            return True
        self._lease_until = None
        self._forget_memory()
        return False

    def _step(self, now: datetime) -> tuple[Round, list[Future]]:
        result = Round()
        if not self._lead(now):
            return result, []
        result.leader = True
        store = self.deps.store
        self._forget_erasures(now)
        marks = store.delivery_marks()
        if self._hooks is None or marks[1] != (self._marks or (None, None))[1] \
                or time.monotonic() - self._read_at > REFRESH_S:
            self._reread()
        self._marks = marks
        hooks = self._hooks
        assert hooks is not None
        result.derived = self._derive(hooks, now)
        if result.derived:
            after = store.delivery_marks()
            if after[1] != marks[1]:
                # A subject erased meanwhile: the store kept its new messages redacted, and memory
                # must not send them as they were made.
                self._reread()
                self._marks = (marks[0], after[1])
        futures: list[Future] = []
        for webhook in hooks:
            futures += self._dispatch(webhook, now)
        result.sent = len(futures)
        return result, futures

    def _reread(self) -> None:
        """The enabled endpoints, and what each is owed, read again from the store."""
        hooks = self.deps.store.enabled_webhooks()
        keys = {(w.tenant_id, w.id) for w in hooks}
        self._queues = {k: q for k, q in self._queues.items() if k in keys}
        for q in self._queues.values():
            q.stale = True
        self._hooks = hooks
        self._read_at = time.monotonic()

    def _next_due(self) -> datetime | None:
        times = [q.idle_until for q in self._queues.values() if q.idle_until is not None]
        return min(times) if times else None

    # --- derive: the feed into messages owed ---------------------------------------------------------
    def _derive(self, hooks: list[Webhook], now: datetime) -> int:
        """Every endpoint's messages from its next feed pages, recorded in one step."""
        self._soon = False
        cache: dict[str, tuple[str, str] | None] = {}  # event id -> (type, body); None: not ready yet
        pages: dict[tuple[str, int], FeedPage] = {}  # endpoints of a tenant at one cursor share a page
        moved = dict.fromkeys(((w.tenant_id, w.id) for w in hooks), 0)
        cursors = {(w.tenant_id, w.id): w.cursor for w in hooks}
        replays = {(w.tenant_id, w.id): w.replay_until for w in hooks}
        for _ in range(PAGES_PER_ROUND):
            owed: list[Owed] = []
            for webhook in hooks:
                key = (webhook.tenant_id, webhook.id)
                cursor = cursors[key]
                page = pages.get((webhook.tenant_id, cursor))
                if page is None:
                    page = pages[(webhook.tenant_id, cursor)] = self.deps.store.feed_page(webhook.tenant_id, cursor,
                                                                                           PAGE)
                if page.end == cursor:
                    continue
                messages, end = self._messages(webhook, page, now, cache)
                if end != cursor:
                    owed.append(Owed(webhook.tenant_id, webhook.id, messages, (cursor, end), replays[key]))
            if not owed:
                break
            for item, recorded in zip(owed, self.deps.store.enqueue_many(owed), strict=True):
                key = (item.tenant_id, item.webhook_id)
                q = self._queues.get(key)
                if not recorded:  # the cursor moved meanwhile (a replay): read the endpoint again
                    self._hooks = None
                    continue
                assert item.advance is not None
                cursors[key] = item.advance[1]
                until = replays[key]
                replays[key] = until if until is not None and until > item.advance[1] else None
                moved[key] += len(item.messages)
                self._note_erasures(item, now)
                if q is None:
                    continue
                if item.resend_upto is not None:
                    q.stale = True  # owed again or not: what the store decided is read back
                else:
                    for message in item.messages:
                        q.put(message)
        if self._hooks is not None:
            self._hooks = [replace(w, cursor=cursors[(w.tenant_id, w.id)],
                                   replay_until=replays[(w.tenant_id, w.id)]) for w in self._hooks]
            self._forget_told_erasures()
        return sum(moved.values())

    def _messages(self, webhook: Webhook, page: FeedPage, now: datetime,
                  cache: dict[str, tuple[str, str] | None]) -> tuple[list[Message], int]:
        """The messages the endpoint takes from the page, and the position derived up to: before
        the first event whose message cannot be made yet (its request not stored yet)."""
        wanted = [(e, p) for e, p in zip(page.events, page.positions, strict=True)
                  if (t := webhook_type(e)) is not None and wants(webhook.types, webhook.purposes, t, e.get("purpose"))]
        missing = [e for e, _ in wanted if e["event_id"] not in cache]
        if missing:
            cache.update(self._bodies(webhook.tenant_id, missing, now))
        out: list[Message] = []
        for event, position in wanted:
            made = cache[event["event_id"]]
            if made is None:
                self._soon = True
                before = [p for p in page.positions if p < position]
                return out, before[-1] if before else webhook.cursor
            type_, text = made
            out.append(Message(
                tenant_id=webhook.tenant_id, webhook_id=webhook.id, id=message_id(webhook.id, event["event_id"]),
                type=type_, body=text, order=position, created_at=now, event_at=parse_ts(event["recorded_at"]),
                subject_ref=event["subject_ref"], event_id=event["event_id"], next_attempt_at=now))
        return out, page.end

    def _bodies(self, tenant_id: str, events: list[dict[str, Any]], now: datetime
                ) -> dict[str, tuple[str, str] | None]:
        """(type, JSON body) of each event's message, None for one that cannot be made yet;
        consent.changed carries the purpose's state right after its event, as the ledger shows
        it at the event's time; request.* the request as it stands."""
        store = self.deps.store
        states = self._states_after(tenant_id, [e for e in events if webhook_type(e) == CONSENT_CHANGED])
        out: dict[str, tuple[str, str] | None] = {}
        for event in events:
            type_ = webhook_type(event)
            assert type_ is not None
            if type_ == CONSENT_CHANGED:
                data: dict[str, Any] = {"tenant_id": tenant_id, "subject_id": event["subject_id"], "event": event,
                                        "state": states.get(event["event_id"])}
            elif type_ == SUBJECT_ERASED:
                data = {"tenant_id": tenant_id, "subject_id": store.erased_subject(tenant_id, event["subject_ref"])}
            elif type_ in REQUEST_TYPES:
                stored = store.get_request(tenant_id, event["request_id"]) if event.get("request_id") else None
                if stored is None and now - parse_ts(event["recorded_at"]) < REQUEST_GRACE:
                    out[event["event_id"]] = None  # opened a moment ago: the request is stored right after its event
                    continue
                request = stored.to_dict() if stored is not None else request_of(event)
                data = {"tenant_id": tenant_id, "subject_id": event["subject_id"], "request": request}
            else:
                continue
            out[event["event_id"]] = (type_, message_body(type_, event["recorded_at"], data))
        return out

    def _states_after(self, tenant_id: str, events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """The purpose's state right after each event: from the subject's record when nothing
        has touched that purpose since (the usual case), else by replaying the chain."""
        if not events:
            return {}
        store = self.deps.store
        purposes = {p.key: p for p in store.list_purposes(tenant_id)}
        policies = Policies(store.list_policies(tenant_id))
        records = store.get_subjects(tenant_id, [e["subject_id"] for e in events if e["subject_id"] is not None])
        states = {}
        replay: dict[str, set[int]] = defaultdict(set)
        for event in events:
            purpose = purposes.get(event.get("purpose") or "")
            record = records.get(event["subject_id"]) if event["subject_id"] is not None else None
            current = record.purposes.get(event["purpose"]) if record is not None else None
            if purpose is None:
                continue
            if record is not None and record.subject_ref == event["subject_ref"] and current is not None \
                    and current.event_id == event["event_id"] \
                    and (current.prompted_at is None or current.prompted_at <= event["recorded_at"]):
                states[event["event_id"]] = state_out(
                    purpose_state(purpose, current, policies, parse_ts(event["recorded_at"])))
            else:
                replay[event["subject_ref"]].add(event["seq"])
        for ref, seqs in replay.items():
            chain = SubjectRecord(subject_id="", subject_ref=ref)
            for event in store.subject_events(tenant_id, ref, 0, max(seqs)):
                chain = apply_event(chain, event)
                purpose = purposes.get(event.get("purpose") or "")
                if event["seq"] in seqs and purpose is not None:
                    state = purpose_state(purpose, chain.purposes.get(purpose.key), policies,
                                          parse_ts(event["recorded_at"]))
                    states[event["event_id"]] = state_out(state)
        return states

    # --- subject.erased: the note of who was erased, kept no longer than needed ---------------------
    def _note_erasures(self, owed: Owed, now: datetime) -> None:
        for message in owed.messages:
            if message.type == SUBJECT_ERASED and message.subject_ref is not None:
                self._erased[(owed.tenant_id, message.subject_ref)] = message.order

    def _forget_told_erasures(self) -> None:
        """Drop an erasure's note once every enabled endpoint of the tenant that takes
        subject.erased has derived past the erase event: the id then lives only in the pending
        messages, which drop it once delivered."""
        if not self._erased or self._hooks is None:
            return
        for (tenant_id, ref), position in list(self._erased.items()):
            waiting = [w for w in self._hooks if w.tenant_id == tenant_id and w.cursor < position
                       and wants(w.types, w.purposes, SUBJECT_ERASED)]
            if not waiting:
                self.deps.store.forget_erasure(tenant_id, ref)
                del self._erased[(tenant_id, ref)]

    # --- dispatch: due messages to the send threads ------------------------------------------------
    def _queue(self, webhook: Webhook) -> _Queue:
        key = (webhook.tenant_id, webhook.id)
        q = self._queues.get(key)
        if q is None:
            q = self._queues[key] = _Queue()
        if q.stale or (q.horizon is not None and len(q.keys) < PENDING_SCAN // 4):
            q.load(self.deps.store.pending_messages(webhook.tenant_id, webhook.id, PENDING_SCAN),
                   set(self._flying[key]))
        return q

    def _dispatch(self, webhook: Webhook, now: datetime) -> list[Future]:
        key = (webhook.tenant_id, webhook.id)
        flying = self._flying[key]
        sending = len(flying) - self._finished[key]
        if sending >= IN_FLIGHT_PER_ENDPOINT:
            return []
        q = self._queue(webhook)
        if q.idle_until is not None and now < q.idle_until:
            return []
        blocked = {m.subject_ref for m in flying.values() if m.subject_ref is not None}
        chosen: list[Message] = []
        wake: datetime | None = None
        for _, message_key in q.keys:
            message = q.messages[message_key]
            if message.subject_ref is not None:
                if message.subject_ref in blocked:
                    continue  # an older message of this subject is still pending
                blocked.add(message.subject_ref)
            if message.next_attempt_at is not None and message.next_attempt_at > now:
                wake = message.next_attempt_at if wake is None else min(wake, message.next_attempt_at)
                continue
            chosen.append(message)
            if sending + len(chosen) >= IN_FLIGHT_PER_ENDPOINT:
                break
        else:  # looked at everything: nothing more can go before the earliest retry (or a completion)
            if not chosen:
                q.idle_until = wake or datetime.max.replace(tzinfo=now.tzinfo)
        futures = []
        for message in chosen:
            q.take(message.id)
            flying[message.id] = message
            futures.append(self._pool.submit(self._send, webhook, message, now))
        return futures

    def _send(self, webhook: Webhook, message: Message, at: datetime) -> None:
        data = message.body.encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            "webhook-id": message.id,
            "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": " ".join(self._sign(secret, message.id, at, data)
                                          for secret in active_secrets(webhook, at)),
        }
        try:
            answer = self.send(webhook.url, headers, data)
        except Exception as exc:  # noqa: BLE001 - a send that raised is a failed attempt, not a dead thread
            answer = sender.Answer(None, 0, f"{type(exc).__name__}: {exc}")
        self._done.put(_Done(webhook, message, at, answer))
        self._wake.set()

    def _sign(self, secret: str, msg_id: str, at: datetime, data: bytes) -> str:
        signer = self._signers.get(secret)
        if signer is None:
            signer = self._signers[secret] = Signer(secret)
        return signer.sign(msg_id, at, data)

    # --- record: attempts, messages, endpoints --------------------------------------------------------
    def _record(self, now: datetime) -> list[Outcome]:
        self._collect()
        done, self._completed = self._completed, []
        if not done:
            return []
        outcomes = [self._outcome(d) for d in done]
        try:
            self.deps.store.record_outcomes(outcomes)
        except Exception:
            self._completed = done + self._completed  # recorded at the next try, or sent again by the next holder
            raise
        self._finished.clear()
        for d, outcome in zip(done, outcomes, strict=True):
            key = (d.webhook.tenant_id, d.webhook.id)
            self._flying[key].pop(d.message.id, None)
            q = self._queues.get(key)
            if q is None:
                continue
            q.idle_until = None  # a subject it blocked may go now
            if outcome.message.status == PENDING:
                q.put(outcome.message)
        by_webhook: dict[Key, list[_Done]] = defaultdict(list)
        for d in done:
            by_webhook[(d.webhook.tenant_id, d.webhook.id)].append(d)
        for (tenant_id, webhook_id), results in by_webhook.items():
            self._endpoint_health(tenant_id, webhook_id, sorted(results, key=lambda d: d.at))
        return outcomes

    def _outcome(self, d: _Done) -> Outcome:
        m, number = d.message, d.message.attempts + 1
        first = m.first_attempt_at or d.at
        ok = d.answer.ok
        retry_at = None if ok else next_attempt(number, first, d.at, self.rng)
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

    def _endpoint_health(self, tenant_id: str, webhook_id: str, results: list[_Done]) -> None:
        """A success forgets the run of failures; failures for DISABLE_AFTER disable the endpoint."""
        known = next((w for w in self._hooks or () if (w.tenant_id, w.id) == (tenant_id, webhook_id)), None)
        if known is not None and known.failing_since is None and all(d.answer.ok for d in results):
            return  # healthy before and after: nothing to read or write
        store = self.deps.store
        webhook = store.get_webhook(tenant_id, webhook_id)
        if webhook is None or webhook.status == DISABLED:
            return
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
                self._hooks = None
                return
        if failing_since != webhook.failing_since:
            store.update_webhook(tenant_id, webhook_id, {"failing_since": failing_since})
            self._hooks = None

    def _forget_erasures(self, now: datetime) -> None:
        if self._forgot_at is None or now - self._forgot_at >= timedelta(minutes=10):
            self.deps.store.forget_erasures(now - ERASURES_KEPT)
            self._forgot_at = now


def state_out(state: PurposeState) -> dict[str, Any]:
    """A purpose's state as GET /v1/subjects/{id}/consents/{purpose} shows it."""
    out = {**asdict(state), "status": str(state.status)}
    if not state.archived:
        del out["archived"]
    return out


def sign(secret: str, msg_id: str, at: datetime, data: bytes) -> str:
    """The Standard Webhooks signature (v1,<base64 HMAC-SHA256 of "id.timestamp.body">)."""
    return Signer(secret).sign(msg_id, at, data)
