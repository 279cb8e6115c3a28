"""What each webhook endpoint is owed: its tenant's change feed after its cursor, turned into
the messages its filters take, recorded with the cursor's move in one step. The delivery
worker (services/delivery.py) owns one ``Deriver`` and calls it once a round, as lease holder.

A message is made from its event as the ledger shows it at the event's time (consent.changed
carries the purpose's state right after the event), so deriving again after a crash makes the
same messages, with the same ids. A request.* event whose request is not stored yet (it is,
right after its event) holds its endpoint's cursor for up to REQUEST_GRACE.

subject.erased names the erased subject, from the store's note of the erasure; the note is
dropped once every endpoint that takes subject.erased has derived past the erase event, and
kept at most ERASURES_KEPT in any case.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import asdict, replace
from datetime import datetime, timedelta
from typing import Any

from consent_api.domain.clock import parse_ts
from consent_api.domain.model import SubjectRecord
from consent_api.domain.projection import apply_event
from consent_api.domain.status import Policies, PurposeState, purpose_state
from consent_api.domain.webhooks import (
    CONSENT_CHANGED,
    REQUEST_TYPES,
    SUBJECT_ERASED,
    message_body,
    message_id,
    request_of,
    wants,
    webhook_type,
)
from consent_api.services.delivery_queue import EndpointQueue, Key
from consent_api.services.deps import Deps
from consent_api.store.delivery import FeedPage, Message, Owed, Webhook

PAGE = 500  # feed events per page
PAGES_PER_ROUND = 10  # per endpoint, so one far behind does not starve the others' sends
REQUEST_GRACE = timedelta(seconds=10)  # how long a request's event may wait for the request to be stored
ERASURES_KEPT = timedelta(days=30)  # how long subject.erased can still name the subject, at most


class Deriver:
    def __init__(self, deps: Deps):
        self.deps = deps
        self.soon = False  # a derivation waits for something (a request being stored): look again soon
        self._erased: dict[tuple[str, str], int] = {}  # erasure notes used: (tenant, ref) -> the erase's position
        self._forgot_at: datetime | None = None

    def derive(self, hooks: list[Webhook], queues: Mapping[Key, EndpointQueue], now: datetime
               ) -> tuple[int, list[Webhook] | None]:
        """Every endpoint's messages from its next feed pages, recorded in one step, and put in
        the endpoint's queue where memory holds one. Returns how many were recorded, and the
        endpoints with their cursors moved, or None when they must be read again from the store
        (a cursor moved meanwhile: a replay)."""
        self.soon = False
        cache: dict[str, tuple[str, str] | None] = {}  # event id -> (type, body); None: not ready yet
        pages: dict[tuple[str, int], FeedPage] = {}  # endpoints of a tenant at one cursor share a page
        moved = dict.fromkeys(((w.tenant_id, w.id) for w in hooks), 0)
        cursors = {(w.tenant_id, w.id): w.cursor for w in hooks}
        replays = {(w.tenant_id, w.id): w.replay_until for w in hooks}
        reread = False
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
                q = queues.get(key)
                if not recorded:  # the cursor moved meanwhile (a replay): read the endpoint again
                    reread = True
                    continue
                assert item.advance is not None
                cursors[key] = item.advance[1]
                until = replays[key]
                replays[key] = until if until is not None and until > item.advance[1] else None
                moved[key] += len(item.messages)
                self._note_erasures(item)
                if q is None:
                    continue
                if item.resend_upto is not None:
                    q.stale = True  # owed again or not: what the store decided is read back
                else:
                    for message in item.messages:
                        q.put(message)
        if reread:
            return sum(moved.values()), None
        hooks = [replace(w, cursor=cursors[(w.tenant_id, w.id)], replay_until=replays[(w.tenant_id, w.id)])
                 for w in hooks]
        self._forget_told_erasures(hooks)
        return sum(moved.values()), hooks

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
                self.soon = True
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
    def _note_erasures(self, owed: Owed) -> None:
        for message in owed.messages:
            if message.type == SUBJECT_ERASED and message.subject_ref is not None:
                self._erased[(owed.tenant_id, message.subject_ref)] = message.order

    def _forget_told_erasures(self, hooks: list[Webhook]) -> None:
        """Drop an erasure's note once every enabled endpoint of the tenant that takes
        subject.erased has derived past the erase event: the id then lives only in the pending
        messages, which drop it once delivered."""
        if not self._erased:
            return
        for (tenant_id, ref), position in list(self._erased.items()):
            waiting = [w for w in hooks if w.tenant_id == tenant_id and w.cursor < position
                       and wants(w.types, w.purposes, SUBJECT_ERASED)]
            if not waiting:
                self.deps.store.forget_erasure(tenant_id, ref)
                del self._erased[(tenant_id, ref)]

    def forget_erasures(self, now: datetime) -> None:
        """Every so often, the store's erasure notes older than ERASURES_KEPT go, told or not."""
        if self._forgot_at is None or now - self._forgot_at >= timedelta(minutes=10):
            self.deps.store.forget_erasures(now - ERASURES_KEPT)
            self._forgot_at = now


def state_out(state: PurposeState) -> dict[str, Any]:
    """A purpose's state as GET /v1/subjects/{id}/consents/{purpose} shows it."""
    out = {**asdict(state), "status": str(state.status)}
    if not state.archived:
        del out["archived"]
    return out
