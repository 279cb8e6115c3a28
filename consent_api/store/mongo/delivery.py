"""The MongoStore's change feed and webhook collections (store/delivery.py is the port).

Feed order without multi-document transactions (docs/scaling.md has the reasoning and bounds):

1. A writer takes positions for an append's events from the tenant's counter document
   (``feed_counters``, one ``$inc`` by the number of events) right before inserting them, after
   it has read the subject's head; each event document carries its ``feed_seq`` and ``fed_at``.
   So within a subject, positions grow with ``seq``: a later seq was planned on a head that
   already held the earlier event, and took its positions after that.
2. A writer whose insert loses the subject's head (DuplicateKeyError) records the positions it
   did not use in ``feed_gaps`` and takes new ones on its next round; a crash between taking
   and inserting leaves a gap nobody records.
3. A reader walks events by (tenant_id, feed_seq). It passes a gap recorded in feed_gaps at
   once, and an unrecorded one once the next event's ``fed_at`` is FEED_GAP_GRACE old (every
   position below a taken one was taken before it); until then the page ends before the gap,
   because the writer holding it may still insert. A writer inserts under ``pymongo.timeout``
   of FEED_WRITE_BOUND (less than the grace), so an insert cannot land after a reader passed it.

Positions and fed_at are this adapter's bookkeeping: reads of the ledger project them away
(documents.EVENT_FIELDS), so exports, history and hashes never see them.

delivery_marks: the newest event's _id (any tenant) and the ``changes`` document of
webhook_counters, which every change to what is owed that the worker did not make increments.
ObjectIds made by two processes within one second need not sort in insert order, so a new event
may leave the mark as it was; the worker then finds it at its next idle round (a second at most).
A message the worker records for a subject erased meanwhile is redacted right after its insert
(the subject's document is gone by then, or the erasure's redaction, which runs after it is
gone, finds the message).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from consent_api.domain.clock import parse_ts, system_clock
from consent_api.domain.webhooks import SUBJECT_ERASED
from consent_api.store.delivery import (
    CHANGES,
    Attempt,
    Counts,
    FeedPage,
    Message,
    Outcome,
    Owed,
    Webhook,
    owed_again,
    redacted,
    scheduled,
)
from consent_api.store.delivery_docs import (
    attempt_doc,
    attempt_from,
    message_doc,
    message_from,
    ts,
    webhook_changes,
    webhook_doc,
    webhook_from,
)
from consent_api.store.mongo.database import Database
from consent_api.store.mongo.documents import NO_ID, utc

FEED_GAP_GRACE = timedelta(seconds=60)
FEED_WRITE_BOUND = timedelta(seconds=20)
PENDING = "pending"


class DeliveryCollections(Database):
    feed_clock = staticmethod(system_clock)  # fed_at and a gap's age: this adapter's own timing

    # --- taking feed positions (the ledger's insert calls these) ---------------------------------
    def _take_positions(self, tenant_id: str, count: int) -> tuple[int, datetime]:
        """count new positions of the tenant's feed: the first of them, and when they were taken."""
        doc = self._db["feed_counters"].find_one_and_update(
            {"_id": tenant_id}, {"$inc": {"n": count}}, upsert=True, return_document=ReturnDocument.AFTER)
        return int(doc["n"]) - count + 1, self.feed_clock()

    def _unused_positions(self, tenant_id: str, positions: Sequence[int]) -> None:
        """Positions taken but never to be inserted: readers pass them without waiting."""
        if positions:
            self._db["feed_gaps"].insert_many([{"tenant_id": tenant_id, "n": n} for n in positions],
                                              ordered=False)

    # --- the change feed -----------------------------------------------------------------------
    def feed_page(self, tenant_id: str, after: int, limit: int) -> FeedPage:
        docs = list(self._events.find({"tenant_id": tenant_id, "feed_seq": {"$gt": after}}, NO_ID)
                    .sort("feed_seq", ASCENDING).limit(limit))
        if not docs:
            return FeedPage([], [], after)
        gaps = {d["n"] for d in self._db["feed_gaps"].find(
            {"tenant_id": tenant_id, "n": {"$gt": after, "$lt": docs[-1]["feed_seq"]}}, {"_id": 0, "n": 1})}
        now = self.feed_clock()
        position, events, positions = after, [], []
        for doc in docs:
            n = doc.pop("feed_seq")
            fed_at = utc(doc.pop("fed_at"))
            missing = n - position - 1 - sum(1 for g in gaps if position < g < n)
            if missing and now - fed_at < FEED_GAP_GRACE:
                break  # a writer may still insert below n: stop before the gap
            events.append(doc)
            positions.append(n)
            position = n
        self._with_subject_ids(tenant_id, events)  # type: ignore[attr-defined]  # the Ledger's
        return FeedPage(events, positions, position)

    def feed_head(self, tenant_id: str) -> int:
        doc = self._db["feed_counters"].find_one({"_id": tenant_id})
        return int(doc["n"]) if doc else 0

    # --- webhook endpoints -----------------------------------------------------------------------
    def _bump(self) -> None:
        self._db["webhook_counters"].update_one({"_id": CHANGES}, {"$inc": {"n": 1}}, upsert=True)

    def add_webhook(self, webhook: Webhook) -> None:
        self._db["webhooks"].insert_one(webhook_doc(webhook))
        self._bump()

    def get_webhook(self, tenant_id: str, webhook_id: str) -> Webhook | None:
        doc = self._db["webhooks"].find_one({"tenant_id": tenant_id, "id": webhook_id}, NO_ID)
        return webhook_from(doc) if doc else None

    def list_webhooks(self, tenant_id: str, after: str | None, limit: int) -> list[Webhook]:
        query: dict[str, Any] = {"tenant_id": tenant_id}
        if after is not None:
            query["id"] = {"$gt": after}
        return [webhook_from(d) for d in self._db["webhooks"].find(query, NO_ID).sort("id", ASCENDING).limit(limit)]

    def count_webhooks(self, tenant_id: str) -> int:
        return int(self._db["webhooks"].count_documents({"tenant_id": tenant_id}))

    def update_webhook(self, tenant_id: str, webhook_id: str, changes: dict[str, Any]) -> Webhook | None:
        doc = self._db["webhooks"].find_one_and_update(
            {"tenant_id": tenant_id, "id": webhook_id}, {"$set": webhook_changes(changes)},
            projection=NO_ID, return_document=ReturnDocument.AFTER)
        self._bump()
        return webhook_from(doc) if doc else None

    def delete_webhook(self, tenant_id: str, webhook_id: str) -> bool:
        gone = self._db["webhooks"].delete_one({"tenant_id": tenant_id, "id": webhook_id}).deleted_count
        self._db["webhook_messages"].delete_many({"tenant_id": tenant_id, "webhook_id": webhook_id})
        self._bump()
        return gone > 0

    def enabled_webhooks(self) -> list[Webhook]:
        docs = self._db["webhooks"].find({"status": "enabled"}, NO_ID).sort([("tenant_id", ASCENDING),
                                                                            ("id", ASCENDING)])
        return [webhook_from(d) for d in docs]

    # --- messages owed ---------------------------------------------------------------------------
    def enqueue_many(self, owed: Sequence[Owed]) -> list[bool]:
        done = [self._enqueue(item.tenant_id, item.webhook_id, item.messages, item.advance, item.resend_upto)
                for item in owed]
        if any(item.advance is None for item in owed):
            self._bump()
        return done

    def _enqueue(self, tenant_id: str, webhook_id: str, messages: Sequence[Message],
                 advance: tuple[int, int] | None, resend_upto: int | None) -> bool:
        # Messages first, then the cursor: a crash in between records them again, as no-ops.
        for message in messages:
            key = {"tenant_id": tenant_id, "webhook_id": webhook_id, "id": message.id}
            inserted = self._db["webhook_messages"].update_one(
                key, {"$setOnInsert": message_doc(message)}, upsert=True).upserted_id is not None
            if inserted:
                self._save_attempt(scheduled(message))
            elif resend_upto is not None and message.order <= resend_upto:
                current = self._db["webhook_messages"].find_one(key, NO_ID)
                owed = owed_again(message_from(current), message) if current else None
                if owed is not None and self._db["webhook_messages"].update_one(
                        {**key, "status": current["status"], "attempts": current["attempts"]},
                        {"$set": message_doc(owed)}).modified_count:
                    self._save_attempt(scheduled(owed))
        self._redact_erased(tenant_id, {m.subject_ref for m in messages if m.subject_ref is not None})
        if advance is None:
            return True
        hooks = self._db["webhooks"]
        moved = hooks.update_one({"tenant_id": tenant_id, "id": webhook_id, "cursor": advance[0]},
                                 {"$set": {"cursor": advance[1]}}).modified_count
        hooks.update_one({"tenant_id": tenant_id, "id": webhook_id, "replay_until": {"$lte": advance[1]}},
                         {"$set": {"replay_until": None}})
        return bool(moved) or advance[0] == advance[1]

    def _redact_erased(self, tenant_id: str, refs: set[str]) -> None:
        """Redact the messages of those refs whose subject is gone (erased while they were made)."""
        if not refs:
            return
        present = {d["subject_ref"] for d in self._subjects.find(
            {"tenant_id": tenant_id, "subject_ref": {"$in": list(refs)}}, {"_id": 0, "subject_ref": 1})}
        for ref in refs - present:
            self.redact_messages(tenant_id, ref)

    def _save_attempt(self, attempt: Attempt) -> None:
        doc = attempt_doc(attempt)
        self._db["webhook_attempts"].replace_one(
            {"tenant_id": attempt.tenant_id, "webhook_id": attempt.webhook_id, "id": attempt.id}, doc, upsert=True)

    def get_message(self, tenant_id: str, webhook_id: str, message_id: str) -> Message | None:
        doc = self._db["webhook_messages"].find_one({"tenant_id": tenant_id, "webhook_id": webhook_id,
                                                     "id": message_id}, NO_ID)
        return message_from(doc) if doc else None

    def pending_messages(self, tenant_id: str, webhook_id: str, limit: int) -> list[Message]:
        docs = self._db["webhook_messages"].find(
            {"tenant_id": tenant_id, "webhook_id": webhook_id, "status": PENDING}, NO_ID,
        ).sort([("order", ASCENDING), ("id", ASCENDING)]).limit(limit)
        return [message_from(d) for d in docs]

    def reschedule(self, tenant_id: str, webhook_id: str, at: datetime, message_id: str | None = None) -> int:
        moved = 0
        query = {"tenant_id": tenant_id, "webhook_id": webhook_id, "status": PENDING}
        if message_id is not None:
            query["id"] = message_id
        for doc in list(self._db["webhook_messages"].find(query, NO_ID)):
            message = message_from(doc)
            self._db["webhook_messages"].update_one(
                {"tenant_id": tenant_id, "webhook_id": webhook_id, "id": message.id},
                {"$set": {"next_attempt_at": ts(at)}})
            self._save_attempt(scheduled(replace(message, next_attempt_at=at)))
            moved += 1
        self._bump()
        return moved

    def record_outcomes(self, outcomes: Sequence[Outcome]) -> None:
        counts: dict[str, int] = {}
        for o in outcomes:
            self._save_attempt(o.attempt)
            if o.retry is not None:
                self._save_attempt(o.retry)
            fields = {k: v for k, v in message_doc(o.message).items()
                      if k in ("status", "attempts", "next_attempt_at", "first_attempt_at")
                      or (k == "body" and o.message.type == SUBJECT_ERASED and o.message.status != PENDING)}
            # the body stays as stored (an erasure may have redacted it while the send was under
            # way), but for a subject.erased no longer pending, which drops the id it carried
            self._db["webhook_messages"].update_one(
                {"tenant_id": o.message.tenant_id, "webhook_id": o.message.webhook_id, "id": o.message.id},
                {"$set": fields})
            counts[o.attempt.status] = counts.get(o.attempt.status, 0) + 1
        for status, n in counts.items():
            self._db["webhook_counters"].update_one({"_id": status}, {"$inc": {"n": n}}, upsert=True)

    def add_attempt(self, attempt: Attempt) -> None:
        self._save_attempt(attempt)

    # --- the delivery log ------------------------------------------------------------------------
    def list_attempts(self, tenant_id: str, webhook_id: str, status: str | None,
                      before: tuple[datetime, str] | None, limit: int) -> list[Attempt]:
        query: dict[str, Any] = {"tenant_id": tenant_id, "webhook_id": webhook_id}
        if status is not None:
            query["status"] = status
        if before is not None:
            at, key = ts(before[0]), before[1]
            query["$or"] = [{"created_at": {"$lt": at}}, {"created_at": at, "id": {"$lt": key}}]
        docs = self._db["webhook_attempts"].find(query, NO_ID).sort(
            [("created_at", DESCENDING), ("id", DESCENDING)]).limit(limit)
        return [attempt_from(d) for d in docs]

    def get_attempt(self, tenant_id: str, webhook_id: str, attempt_id: str) -> Attempt | None:
        doc = self._db["webhook_attempts"].find_one({"tenant_id": tenant_id, "webhook_id": webhook_id,
                                                     "id": attempt_id}, NO_ID)
        return attempt_from(doc) if doc else None

    def export_attempts(self, tenant_id: str, since: datetime | None, until: datetime | None,
                        webhook_id: str | None) -> Iterator[Attempt]:
        query: dict[str, Any] = {"tenant_id": tenant_id}
        window = {op: ts(v) for op, v in (("$gte", since), ("$lt", until)) if v is not None}
        if window:
            query["created_at"] = window
        if webhook_id is not None:
            query["webhook_id"] = webhook_id
        cursor = self._db["webhook_attempts"].find(query, NO_ID).sort([("created_at", ASCENDING), ("id", ASCENDING)])
        try:
            for doc in cursor:
                yield attempt_from(doc)
        finally:
            cursor.close()

    def oldest_pending(self, tenant_id: str, webhook_id: str) -> datetime | None:
        doc = self._db["webhook_messages"].find_one(
            {"tenant_id": tenant_id, "webhook_id": webhook_id, "status": PENDING}, {"_id": 0, "event_at": 1},
            sort=[("event_at", ASCENDING)])
        return parse_ts(doc["event_at"]) if doc else None

    def delivery_counts(self) -> Counts:
        return Counts({d["_id"]: int(d["n"]) for d in self._db["webhook_counters"].find({"_id": {"$ne": CHANGES}})})

    def delivery_marks(self) -> tuple[Any, int]:
        newest = self._events.find_one({}, {"_id": 1}, sort=[("_id", DESCENDING)])
        changes = self._db["webhook_counters"].find_one({"_id": CHANGES})
        return (newest["_id"] if newest else None), int(changes["n"]) if changes else 0

    # --- erasures --------------------------------------------------------------------------------
    def note_erasure(self, tenant_id: str, subject_ref: str, subject_id: str, at: datetime) -> None:
        self._db["erasures"].replace_one({"tenant_id": tenant_id, "subject_ref": subject_ref},
                                         {"tenant_id": tenant_id, "subject_ref": subject_ref,
                                          "subject_id": subject_id, "at": ts(at)}, upsert=True)

    def erased_subject(self, tenant_id: str, subject_ref: str) -> str | None:
        doc = self._db["erasures"].find_one({"tenant_id": tenant_id, "subject_ref": subject_ref})
        return doc["subject_id"] if doc else None

    def forget_erasures(self, before: datetime) -> int:
        return int(self._db["erasures"].delete_many({"at": {"$lt": ts(before)}}).deleted_count)

    def forget_erasure(self, tenant_id: str, subject_ref: str) -> None:
        self._db["erasures"].delete_one({"tenant_id": tenant_id, "subject_ref": subject_ref})

    def redact_messages(self, tenant_id: str, subject_ref: str) -> int:
        changed = 0
        for doc in list(self._db["webhook_messages"].find({"tenant_id": tenant_id, "subject_ref": subject_ref},
                                                          NO_ID)):
            message = message_from(doc)
            kept = redacted(message)
            if kept is not message:
                self._db["webhook_messages"].update_one(
                    {"tenant_id": tenant_id, "webhook_id": message.webhook_id, "id": message.id},
                    {"$set": {"body": kept.body}})
                changed += 1
        self._bump()
        return changed

    # --- the lease -------------------------------------------------------------------------------
    def acquire_lease(self, name: str, holder: str, now: datetime, until: datetime) -> bool:
        try:
            self._db["leases"].find_one_and_update(
                {"_id": name, "$or": [{"holder": holder}, {"until": {"$lte": ts(now)}}]},
                {"$set": {"holder": holder, "until": ts(until)}}, upsert=True)
        except DuplicateKeyError:
            return False  # held by another, still in force
        return True

    def release_lease(self, name: str, holder: str) -> None:
        self._db["leases"].delete_one({"_id": name, "holder": holder})
