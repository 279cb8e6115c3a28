"""The delivery worker: each enabled endpoint consumes its tenant's change feed, and what it is
owed is sent, signed (Standard Webhooks), at least once, in ledger order per subject.

One round (``step``), by the holder of the store's lease only:

    derive    for each endpoint, feed pages after its cursor -> the messages its filters take,
              recorded together with the cursor's move (store.enqueue), so a crash re-derives
              the same messages (same ids) and loses none
    dispatch  per endpoint, the due pending messages, at most IN_FLIGHT_PER_ENDPOINT at once
              and one per subject: a subject's next message waits while an older one is pending
    record    each attempt's log row, the message's new state, the retry's row (backoff with
              jitter for at least RETRY_FOR, then failed); an endpoint failing for DISABLE_AFTER
              is disabled, with a webhook.disabled row in its log

``run_once(now)`` does a whole round and waits for its sends (tests step it with a fixed
clock); ``run(stop)`` loops, recording each send as it completes, so a slow endpoint holds
up no other. Sends go to outbound/sender.py unless a test gives another ``send``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import random
import socket
import threading
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
from consent_api.store.delivery import Attempt, FeedPage, Message, Outcome, Webhook, scheduled

log = logging.getLogger("consent_api.webhooks")

LEASE = "webhook-delivery"
PAGE = 500  # feed events per enqueue
PAGES_PER_ROUND = 10  # per endpoint, so one far behind does not starve the others' sends
PENDING_SCAN = 64  # oldest pending messages looked at per endpoint and round (16x what may be in flight)
MIN_ROUND_S = 0.02  # between rounds: completions arriving together share a round and a commit
SEND_THREADS = 16
ERASURES_KEPT = timedelta(days=30)  # how long subject.erased can still name the subject

Send = Callable[[str, dict[str, str], bytes], sender.Answer]  # (url, headers, body) -> answer


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


class Worker:
    def __init__(self, deps: Deps, send: Send | None = None, *, holder: str | None = None,
                 rng: random.Random | None = None, threads: int = SEND_THREADS):
        self.deps = deps
        allow = deps.webhooks.allow_private
        self.send: Send = send or (lambda url, headers, data: sender.post(url, headers, data, allow_private=allow))
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.rng = rng or random.Random()
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="webhook-send")
        self._lock = threading.Lock()
        self._in_flight: dict[str, int] = defaultdict(int)  # webhook id -> sends under way
        self._busy: set[tuple[str, str]] = set()  # (webhook id, message id) under way
        self._done: queue.SimpleQueue[_Done] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._forgot_at: datetime | None = None

    # --- a round ---------------------------------------------------------------------------------
    def run_once(self, now: datetime | None = None) -> Round:
        """A whole round at ``now``, its sends waited for and recorded."""
        now = now or self.deps.clock()
        result, futures = self._step(now)
        wait_all(futures)
        result.outcomes = self._record()
        return result

    def run(self, stop: threading.Event) -> None:
        """Rounds until stop is set; each send is recorded as soon as it completes. On stop,
        the sends under way finish (within the send timeout), are recorded, and the lease goes."""
        poll = self.deps.webhooks.poll_s
        while not stop.is_set():
            try:
                self._record()
                self._step(self.deps.clock())
            except Exception:  # noqa: BLE001 - a store outage must not end the worker: the next round retries
                log.exception("webhook round failed; retrying")
            self._wake.wait(poll)
            stop.wait(MIN_ROUND_S)  # sends completing meanwhile are recorded in one transaction
            self._wake.clear()
        self._pool.shutdown(wait=True)
        try:
            self._record()
            self.deps.store.release_lease(LEASE, self.holder)
        except Exception:  # noqa: BLE001 - what was not recorded is sent again by the next holder
            log.exception("webhook worker stopping: could not record the last sends")

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def _step(self, now: datetime) -> tuple[Round, list[Future]]:
        result = Round()
        store = self.deps.store
        if not store.acquire_lease(LEASE, self.holder, now, now + timedelta(seconds=self.deps.webhooks.lease_s)):
            return result, []
        result.leader = True
        self._forget_erasures(now)
        futures: list[Future] = []
        states: dict[str, Any] = {}  # event id -> its message fields, shared by the round's endpoints
        for webhook in store.enabled_webhooks():
            result.derived += self._derive(webhook, now, states)
            futures += self._dispatch(webhook, now)
        result.sent = len(futures)
        return result, futures

    # --- derive: the feed into messages owed ---------------------------------------------------------
    def _derive(self, webhook: Webhook, now: datetime, cache: dict[str, Any]) -> int:
        store = self.deps.store
        recorded = 0
        for _ in range(PAGES_PER_ROUND):
            page = store.feed_page(webhook.tenant_id, webhook.cursor, PAGE)
            if page.end == webhook.cursor:
                break
            messages = self._messages(webhook, page, now, cache)
            if not store.enqueue(webhook.tenant_id, webhook.id, messages, advance=(webhook.cursor, page.end),
                                 resend_upto=webhook.replay_until):
                break  # the cursor moved meanwhile (a replay): the next round starts from it
            recorded += len(messages)
            replay_until = webhook.replay_until if webhook.replay_until and webhook.replay_until > page.end else None
            webhook = replace(webhook, cursor=page.end, replay_until=replay_until)
        return recorded

    def _messages(self, webhook: Webhook, page: FeedPage, now: datetime, cache: dict[str, Any]) -> list[Message]:
        wanted = [(e, p) for e, p in zip(page.events, page.positions, strict=True)
                  if (t := webhook_type(e)) is not None and wants(webhook.types, webhook.purposes, t, e.get("purpose"))]
        missing = [e for e, _ in wanted if e["event_id"] not in cache]
        if missing:
            cache.update(self._bodies(webhook.tenant_id, missing))
        out = []
        for event, position in wanted:
            type_, text = cache[event["event_id"]]
            out.append(Message(
                tenant_id=webhook.tenant_id, webhook_id=webhook.id, id=message_id(webhook.id, event["event_id"]),
                type=type_, body=text, order=position, created_at=now, event_at=parse_ts(event["recorded_at"]),
                subject_ref=event["subject_ref"], event_id=event["event_id"], next_attempt_at=now))
        return out

    def _bodies(self, tenant_id: str, events: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
        """(type, JSON body) of each event's message; consent.changed carries the purpose's state
        right after its event, as the ledger shows it at the event's time; request.* the request
        as it stands (as its event states it if it cannot be read)."""
        states = self._states_after(tenant_id, [e for e in events if webhook_type(e) == CONSENT_CHANGED])
        out = {}
        for event in events:
            type_ = webhook_type(event)
            assert type_ is not None
            if type_ == CONSENT_CHANGED:
                data: dict[str, Any] = {"tenant_id": tenant_id, "subject_id": event["subject_id"], "event": event,
                                        "state": states.get(event["event_id"])}
            elif type_ == SUBJECT_ERASED:
                data = {"tenant_id": tenant_id,
                        "subject_id": self.deps.store.erased_subject(tenant_id, event["subject_ref"])}
            elif type_ in REQUEST_TYPES:
                request_id = event.get("request_id")
                stored = self.deps.store.get_request(tenant_id, request_id) if request_id else None
                request = stored.to_dict() if stored is not None else request_of(event)
                data = {"tenant_id": tenant_id, "subject_id": event["subject_id"], "request": request}
            else:
                continue
            out[event["event_id"]] = (type_, message_body(type_, event["recorded_at"], data))
        return out

    def _states_after(self, tenant_id: str, events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        if not events:
            return {}
        store = self.deps.store
        purposes = {p.key: p for p in store.list_purposes(tenant_id)}
        policies = Policies(store.list_policies(tenant_id))
        by_ref: dict[str, set[int]] = defaultdict(set)
        for event in events:
            by_ref[event["subject_ref"]].add(event["seq"])
        states = {}
        for ref, seqs in by_ref.items():
            record = SubjectRecord(subject_id="", subject_ref=ref)
            for event in store.subject_events(tenant_id, ref, 0, max(seqs)):
                record = apply_event(record, event)
                purpose = purposes.get(event.get("purpose") or "")
                if event["seq"] in seqs and purpose is not None:
                    state = purpose_state(purpose, record.purposes.get(purpose.key), policies,
                                          parse_ts(event["recorded_at"]))
                    states[event["event_id"]] = state_out(state)
        return states

    # --- dispatch: due messages to the send threads ------------------------------------------------
    def _dispatch(self, webhook: Webhook, now: datetime) -> list[Future]:
        futures: list[Future] = []
        with self._lock:
            if self._in_flight[webhook.id] >= IN_FLIGHT_PER_ENDPOINT:
                return futures
        subjects: set[str] = set()
        for message in self.deps.store.pending_messages(webhook.tenant_id, webhook.id, PENDING_SCAN):
            if message.subject_ref is not None:
                if message.subject_ref in subjects:
                    continue  # an older message of this subject is still pending
                subjects.add(message.subject_ref)
            if message.next_attempt_at is not None and message.next_attempt_at > now:
                continue
            with self._lock:
                if (webhook.id, message.id) in self._busy:
                    continue
                if self._in_flight[webhook.id] >= IN_FLIGHT_PER_ENDPOINT:
                    break
                self._busy.add((webhook.id, message.id))
                self._in_flight[webhook.id] += 1
            futures.append(self._pool.submit(self._send, webhook, message, now))
        return futures

    def _send(self, webhook: Webhook, message: Message, at: datetime) -> None:
        data = message.body.encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            "webhook-id": message.id,
            "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": " ".join(sign(secret, message.id, at, data)
                                          for secret in active_secrets(webhook, at)),
        }
        try:
            answer = self.send(webhook.url, headers, data)
        except Exception as exc:  # noqa: BLE001 - a send that raised is a failed attempt, not a dead thread
            answer = sender.Answer(None, 0, f"{type(exc).__name__}: {exc}")
        self._done.put(_Done(webhook, message, at, answer))
        self._wake.set()

    # --- record: attempts, messages, endpoints --------------------------------------------------------
    def _record(self) -> list[Outcome]:
        done: list[_Done] = []
        while True:
            try:
                done.append(self._done.get_nowait())
            except queue.Empty:
                break
        if not done:
            return []
        outcomes = [self._outcome(d) for d in done]
        self.deps.store.record_outcomes(outcomes)
        with self._lock:
            for d in done:
                self._busy.discard((d.webhook.id, d.message.id))
                self._in_flight[d.webhook.id] -= 1
        by_webhook: dict[tuple[str, str], list[_Done]] = defaultdict(list)
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
                return
        if failing_since != webhook.failing_since:
            store.update_webhook(tenant_id, webhook_id, {"failing_since": failing_since})

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
