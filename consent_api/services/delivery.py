"""The delivery worker: each enabled endpoint consumes its tenant's change feed, and what it is
owed is sent, signed (Standard Webhooks), at least once, in ledger order per subject.

One round, by the holder of the store's lease only:

    derive    for each endpoint, feed pages after its cursor -> the messages its filters take;
              every endpoint's messages recorded together with its cursor's move, all in one
              step (store.enqueue_many), so a crash re-derives the same messages (same ids) and
              loses none (services/owed.py)
    dispatch  per endpoint, the due messages it owes, at most IN_FLIGHT_PER_ENDPOINT at once
              and one per subject: a subject's next message waits while an older one is pending;
              while the round gathers completions (MIN_ROUND_S), a completed send's place goes
              to the endpoint's next due message of another subject
    record    each attempt's log row, the message's new state, the retry's row (backoff with
              jitter for at least RETRY_FOR, then failed); an endpoint failing for DISABLE_AFTER
              is disabled, with a webhook.disabled row in its log (services/delivery_outcome.py)

What each endpoint is owed is kept in memory between rounds (services/delivery_queue.py),
read from the store when the worker starts leading, when someone else changed it (the store's
changes counter: a test message, policy.published, a retry, an endpoint's edit, an erasure),
and page by page when a backlog is larger than memory holds; the worker's own messages and
outcomes update it as they are recorded. Between rounds the worker waits for the first of: a
send completing, the store's delivery marks moving (an event committed anywhere, checked every
poll_s: two cheap reads), the next retry falling due, or IDLE_ROUND_S.

The worker's own writes skip the wait for an fsync (``durable=False`` where the store has it):
a message and its cursor's move are lost or kept together, so a lost round is derived again;
a lost outcome means one more send, which at-least-once allows.

``run_once(now)`` does a whole round from the store and waits for its sends (tests step it
with a fixed clock); ``run(stop)`` loops. Sends go to outbound/sender.py (kept-alive
connections per receiver) unless a test gives another ``send``.
"""

from __future__ import annotations

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
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from standardwebhooks.webhooks import Webhook as Signer

from consent_api.domain.webhooks import IN_FLIGHT_PER_ENDPOINT, PENDING
from consent_api.outbound import sender
from consent_api.services.delivery_outcome import Completed, endpoint_health, outcome_of
from consent_api.services.delivery_queue import PENDING_SCAN, EndpointQueue, Key
from consent_api.services.deps import Deps
from consent_api.services.owed import Deriver
from consent_api.services.webhooks import active_secrets
from consent_api.store.delivery import Message, Outcome, Webhook

log = logging.getLogger("consent_api.webhooks")

LEASE = "webhook-delivery"
MIN_ROUND_S = 0.02  # between rounds: events and completions arriving together share a round and a commit;
# meanwhile a completed send's place is given to the endpoint's next due message (see _refill)
IDLE_ROUND_S = 1.0  # a round at least this often (retries falling due, time-based work)
REFRESH_S = 30.0  # what is owed is read again from the store at least this often, whatever the marks say
SEND_THREADS = 16

Send = Callable[[str, dict[str, str], bytes], sender.Answer]  # (url, headers, body) -> answer


@dataclass
class Round:
    leader: bool = False
    derived: int = 0  # messages recorded from the feed
    sent: int = 0  # sends started
    outcomes: list[Outcome] = field(default_factory=list)  # recorded in this round


class Worker:
    def __init__(self, deps: Deps, send: Send | None = None, *, holder: str | None = None,
                 rng: random.Random | None = None, threads: int = SEND_THREADS):
        self.deps = deps
        self._sender = sender.Sender(deps.webhooks.allow_private) if send is None else None
        self.send: Send = send or self._sender.post  # type: ignore[union-attr]
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.rng = rng or random.Random()
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="webhook-send")
        self._done: queue.SimpleQueue[Completed] = queue.SimpleQueue()
        self._wake = threading.Event()
        # Touched by the loop's thread only (sends report through _done):
        self._lease_until: datetime | None = None
        self._queues: dict[Key, EndpointQueue] = {}
        self._flying: dict[Key, dict[str, Message]] = defaultdict(dict)  # sent, outcome not recorded yet
        self._completed: list[Completed] = []  # sends completed since the last record, taken off _done
        self._finished: dict[Key, int] = defaultdict(int)  # of _flying, how many are in _completed
        self._hooks: list[Webhook] | None = None  # the enabled endpoints, cursors as this worker moved them
        self._marks: tuple[Any, int] | None = None  # the store's delivery marks when last looked
        self._read_at = 0.0  # monotonic time of the last full read
        self._signers: dict[str, Signer] = {}
        self._owed = Deriver(deps)  # what each endpoint is owed, from the feed

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
        limit = 0.05 if self._owed.soon else IDLE_ROUND_S
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
        self._owed.forget_erasures(now)
        marks = store.delivery_marks()
        if self._hooks is None or marks[1] != (self._marks or (None, None))[1] \
                or time.monotonic() - self._read_at > REFRESH_S:
            self._reread()
        self._marks = marks
        hooks = self._hooks
        assert hooks is not None
        result.derived, self._hooks = self._owed.derive(hooks, self._queues, now)
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

    # --- dispatch: due messages to the send threads ------------------------------------------------
    def _queue(self, webhook: Webhook) -> EndpointQueue:
        key = (webhook.tenant_id, webhook.id)
        q = self._queues.get(key)
        if q is None:
            q = self._queues[key] = EndpointQueue()
        if q.needs_read():
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
        self._done.put(Completed(webhook, message, at, answer))
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
        outcomes = [outcome_of(d, self.rng) for d in done]
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
        by_webhook: dict[Key, list[Completed]] = defaultdict(list)
        for d in done:
            by_webhook[(d.webhook.tenant_id, d.webhook.id)].append(d)
        for (tenant_id, webhook_id), results in by_webhook.items():
            known = next((w for w in self._hooks or () if (w.tenant_id, w.id) == (tenant_id, webhook_id)), None)
            if endpoint_health(self.deps.store, tenant_id, webhook_id, known, sorted(results, key=lambda d: d.at)):
                self._hooks = None
        return outcomes


def sign(secret: str, msg_id: str, at: datetime, data: bytes) -> str:
    """The Standard Webhooks signature (v1,<base64 HMAC-SHA256 of "id.timestamp.body">)."""
    return Signer(secret).sign(msg_id, at, data)
