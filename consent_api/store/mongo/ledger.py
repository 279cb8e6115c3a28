"""The MongoStore's subjects and events: reads that repair a record left behind by a writer
that died, the storage step of an append (with the per-day counters: daily.py), the audit
export, and whole chains."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pymongo
from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.errors import BulkWriteError, DuplicateKeyError

from consent_api.domain import daily as tally
from consent_api.domain.appending import Reseal, Sealed, Stored
from consent_api.domain.ledger import ZERO_HASH
from consent_api.domain.model import Action, SubjectRecord
from consent_api.domain.projection import apply_events
from consent_api.errors import Conflict
from consent_api.store import records
from consent_api.store.mongo import daily
from consent_api.store.mongo.delivery import FEED_WRITE_BOUND, DeliveryCollections
from consent_api.store.mongo.documents import EVENT_FIELDS, NO_ID, event_doc, record_from, subject_doc
from consent_api.store.port import Answer, Chain, DailyCounts, ExportFilter

EXPORT_ORDER = [("recorded_at", ASCENDING), ("seq", ASCENDING), ("event_id", ASCENDING)]
EXPORT_BATCH = 1000  # events per subject_id look-up while exporting
IN_CHUNK = 1000  # ids per $in / $or query


class Ledger(DeliveryCollections):
    # --- subjects: reading and repairing -------------------------------------------------------
    def _load(self, tenant_id: str, subject_id: str) -> SubjectRecord | None:
        """The subject's record caught up with its events; None when unknown or erased."""
        doc = self._subjects.find_one({"tenant_id": tenant_id, "subject_id": subject_id}, NO_ID)
        return self._catch_up(tenant_id, record_from(doc)) if doc else None

    def _catch_up(self, tenant_id: str, record: SubjectRecord) -> SubjectRecord | None:
        """Apply the events newer than the record (a writer died or is mid-way) and save it."""
        newer = list(self._events.find(
            {"tenant_id": tenant_id, "subject_ref": record.subject_ref, "seq": {"$gt": record.seq}},
            EVENT_FIELDS,
        ).sort("seq", ASCENDING))
        if not newer:
            return record
        if any(e["action"] == Action.ERASE for e in newer):
            self._finish_erasure(tenant_id, record.subject_id, record.subject_ref, newer)
            return None
        record = apply_events(record, newer)
        self._advance(tenant_id, record, newer)
        return record

    def _catch_up_many(self, tenant_id: str, found: list[SubjectRecord]) -> list[SubjectRecord]:
        """_catch_up for a page of records in one query; drops erased and event-less ones."""
        behind: set[str] = set()
        for start in range(0, len(found), IN_CHUNK):
            clauses = [{"tenant_id": tenant_id, "subject_ref": r.subject_ref, "seq": {"$gt": r.seq}}
                       for r in found[start:start + IN_CHUNK]]
            behind.update(self._events.distinct("subject_ref", {"$or": clauses}))
        fresh = [self._catch_up(tenant_id, r) if r.subject_ref in behind else r for r in found]
        return [r for r in fresh if r is not None and r.seq > 0]

    def _advance(self, tenant_id: str, record: SubjectRecord, events: list[dict[str, Any]]) -> None:
        """Move the stored record forward to record, which is it with events applied."""
        # Only forwards: a slower writer or repairer holding an older head changes nothing,
        # and the subject_ref condition keeps us off a subject re-created after erasure.
        before = self._subjects.find_one_and_update(
            {"tenant_id": tenant_id, "subject_id": record.subject_id,
             "subject_ref": record.subject_ref, "seq": {"$lt": record.seq}},
            {"$set": subject_doc(tenant_id, record)}, projection=NO_ID, return_document=ReturnDocument.BEFORE,
        )
        self._count_past(tenant_id, before, events)

    def _finish_erasure(self, tenant_id: str, subject_id: str, subject_ref: str,
                        events: list[dict[str, Any]]) -> None:
        before = self._subjects.find_one_and_delete(
            {"tenant_id": tenant_id, "subject_id": subject_id, "subject_ref": subject_ref}, projection=NO_ID)
        for about in ({"subject_ref": subject_ref}, {"subject_id": subject_id}):  # each on its index
            self._idempotency.delete_many({"tenant_id": tenant_id, **about})
        self._count_past(tenant_id, before, events)

    def _count_past(self, tenant_id: str, before: dict[str, Any] | None, events: list[dict[str, Any]]) -> None:
        """Count the events our move took the record past (daily.py): those after its seq before
        the move, the record then being their base; nothing when another move came first."""
        if before is None:
            return
        base = record_from(before)
        past = [e for e in events if e["seq"] > base.seq]
        if past and past[0]["seq"] > base.seq + 1:  # not ours alone: read what lies between
            past = self.subject_events(tenant_id, base.subject_ref, base.seq, past[0]["seq"] - base.seq - 1) + past
        if past:
            validity = self._validity(tenant_id, {e["purpose"] for e in past if e.get("purpose") is not None})
            daily.add(self._daily_counts, tenant_id, tally.tally(base, past, validity))

    def _page(self, tenant_id: str, query: dict[str, Any], after: str | None, limit: int,
              keep: Callable[[SubjectRecord], bool]) -> list[SubjectRecord]:
        """Records in subject_id order after `after`, refilled when repair drops some."""
        page: list[SubjectRecord] = []
        while len(page) < limit:
            wanted = limit - len(page)
            scoped = {"tenant_id": tenant_id, **query}
            if after is not None:
                scoped["subject_id"] = {"$gt": after}
            docs = list(self._subjects.find(scoped, NO_ID).sort("subject_id", ASCENDING).limit(wanted))
            page += [r for r in self._catch_up_many(tenant_id, [record_from(d) for d in docs]) if keep(r)]
            if len(docs) < wanted:
                break
            after = docs[-1]["subject_id"]
        return page

    def get_subject(self, tenant_id: str, subject_id: str) -> SubjectRecord | None:
        record = self._load(tenant_id, subject_id)
        return record if record is not None and record.seq > 0 else None

    def get_subjects(self, tenant_id: str, subject_ids: Sequence[str]) -> dict[str, SubjectRecord]:
        ids = list(dict.fromkeys(subject_ids))
        found: dict[str, SubjectRecord] = {}
        for start in range(0, len(ids), IN_CHUNK):
            docs = self._subjects.find(
                {"tenant_id": tenant_id, "subject_id": {"$in": ids[start:start + IN_CHUNK]}}, NO_ID)
            for record in self._catch_up_many(tenant_id, [record_from(d) for d in docs]):
                found[record.subject_id] = record
        return found

    def allowed_candidates(self, tenant_id: str, purpose: str, after: str | None,
                           limit: int) -> list[SubjectRecord]:
        def still_granted(record: SubjectRecord) -> bool:
            rec = record.purposes.get(purpose)
            return rec is not None and rec.action == Action.GRANT
        return self._page(tenant_id, {"granted": purpose}, after, limit, still_granted)

    def list_subjects(self, tenant_id: str, after: str | None, limit: int) -> list[SubjectRecord]:
        return self._page(tenant_id, {}, after, limit, lambda record: True)

    def replace_record(self, tenant_id: str, record: SubjectRecord) -> None:
        try:
            self._subjects.update_one(
                {"tenant_id": tenant_id, "subject_id": record.subject_id},
                {"$set": subject_doc(tenant_id, record)}, upsert=True,
            )
        except DuplicateKeyError as exc:
            raise Conflict(f"subject_ref {record.subject_ref} belongs to another subject") from exc

    # --- subjects: the storage step of an append (domain/appending.py) -------------------------
    def subject_head(self, tenant_id: str, subject_id: str) -> SubjectRecord | None:
        return self._load(tenant_id, subject_id)

    def write_sealed(self, tenant_id: str, subject_id: str, sealed: Sealed, reseal: Reseal, *,
                     erase: bool = False, answer: Answer | None = None) -> Stored:
        """Steps 1-3 of the module docstring. Losing the head to a concurrent writer answers the
        newer head after the events that made it in (they are evidence, and stay).

        An idempotent request's answer is not written here: without a transaction around both,
        complete_idempotency_key stores it after the events, and a retry after a crash in
        between finds the events by their idempotency_key (Store.append's ``resumes``)."""
        base = sealed.base
        if base.seq == 0 and not self._create_subject(tenant_id, base):
            current = self._load(tenant_id, subject_id)  # a concurrent writer created it
            if current is None or current.subject_ref != base.subject_ref or current.seq != 0:
                return Stored([], current, done=False)
        inserted = self._insert_events(sealed.events)
        stored = sealed.events[:inserted]
        if inserted < len(sealed.events):
            return Stored(stored, self._catch_up(tenant_id, apply_events(base, stored)), done=False)
        if erase:
            self._finish_erasure(tenant_id, subject_id, base.subject_ref, stored)
        else:
            self._advance(tenant_id, sealed.record, stored)
        return Stored(stored, sealed.record)

    def _create_subject(self, tenant_id: str, record: SubjectRecord) -> bool:
        """Claim the subject id for record's new subject_ref; False when someone else did."""
        try:
            self._subjects.insert_one(subject_doc(tenant_id, record))
        except DuplicateKeyError:
            return False
        return True

    def _insert_events(self, events: list[dict[str, Any]]) -> int:
        """Insert in seq order, each at a new feed position (delivery.py); the number inserted
        before a seq already taken, whose positions and the rest are recorded as unused."""
        if not events:
            return 0
        tenant_id = events[0]["tenant_id"]
        first, fed_at = self._take_positions(tenant_id, len(events))
        docs = [{**event_doc(e), "feed_seq": first + i, "fed_at": fed_at} for i, e in enumerate(events)]
        try:
            with pymongo.timeout(FEED_WRITE_BOUND.total_seconds()):  # never lands after readers passed it
                self._events.insert_many(docs, ordered=True)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors") or []
            if errors and not exc.details.get("writeConcernErrors") and all(
                    e.get("code") == 11000 for e in errors):
                inserted = errors[0]["index"]
                self._unused_positions(tenant_id, [d["feed_seq"] for d in docs[inserted:]])
                return inserted
            raise
        return len(events)

    # --- per-day counters ----------------------------------------------------------------------
    def daily_counts(self, tenant_id: str, since: str | None, until: str,
                     purpose: str | None = None) -> DailyCounts:
        return daily.read(self._daily_counts, tenant_id, since, until, purpose)

    def replace_daily_counts(self, tenant_id: str, counts: tally.Tally) -> None:
        daily.replace(self._daily_counts, tenant_id, counts)

    # --- events ----------------------------------------------------------------------------------
    def subject_events(self, tenant_id: str, subject_ref: str, after_seq: int = 0,
                       limit: int | None = None) -> list[dict[str, Any]]:
        cursor = self._events.find(
            {"tenant_id": tenant_id, "subject_ref": subject_ref, "seq": {"$gt": after_seq}}, EVENT_FIELDS
        ).sort("seq", ASCENDING)
        if limit is not None:
            cursor = cursor.limit(limit)
        return list(cursor)

    def export_events(self, tenant_id: str, flt: ExportFilter) -> Iterator[dict[str, Any]]:
        query: dict[str, Any] = {"tenant_id": tenant_id}
        recorded_at: dict[str, str] = {}
        if flt.since:
            recorded_at["$gte"] = flt.since
        if flt.until:
            recorded_at["$lt"] = flt.until
        if recorded_at:
            query["recorded_at"] = recorded_at
        if flt.purpose:
            query["purpose"] = flt.purpose
        if flt.subject_ref:
            query["subject_ref"] = flt.subject_ref
        if flt.after:
            at, seq, event_id = flt.after.recorded_at, flt.after.seq, flt.after.event_id
            query["$or"] = [
                {"recorded_at": {"$gt": at}},
                {"recorded_at": at, "seq": {"$gt": seq}},
                {"recorded_at": at, "seq": seq, "event_id": {"$gt": event_id}},
            ]
        # Events may come from a secondary (export_read_preference); subject ids come from the
        # primary, where a subject's mapping is written before its first event.
        cursor = self._export_events.find(query, EVENT_FIELDS).sort(EXPORT_ORDER).batch_size(EXPORT_BATCH)
        try:
            batch: list[dict[str, Any]] = []
            for event in cursor:
                batch.append(event)
                if len(batch) == EXPORT_BATCH:
                    yield from self._with_subject_ids(tenant_id, batch)
                    batch = []
            yield from self._with_subject_ids(tenant_id, batch)
        finally:
            cursor.close()

    def _with_subject_ids(self, tenant_id: str, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        refs = list({e["subject_ref"] for e in events})
        ids = {
            doc["subject_ref"]: doc["subject_id"]
            for doc in self._subjects.find({"tenant_id": tenant_id, "subject_ref": {"$in": refs}},
                                           {"_id": 0, "subject_ref": 1, "subject_id": 1})
        } if refs else {}
        for event in events:
            event["subject_id"] = ids.get(event["subject_ref"])
        return events

    # --- whole chains --------------------------------------------------------------------------
    def list_chains(self, tenant_id: str, after: str | None, limit: int) -> list[Chain]:
        # One pass over the unique index in (subject_ref, seq) order, stopped after `limit`
        # chains; $group would read every later event of the tenant for each page.
        query: dict[str, Any] = {"tenant_id": tenant_id}
        if after is not None:
            query["subject_ref"] = {"$gt": after}
        fields = {"_id": 0, "subject_ref": 1, "seq": 1, "hash": 1, "action": 1}
        cursor = self._events.find(query, fields).sort([("subject_ref", ASCENDING), ("seq", ASCENDING)])
        heads: dict[str, dict[str, Any]] = {}
        try:
            for event in cursor.batch_size(EXPORT_BATCH):
                head = heads.get(event["subject_ref"])
                if head is None:
                    if len(heads) == limit:
                        break
                    head = heads[event["subject_ref"]] = {"events": 0}
                head.update(events=head["events"] + 1, seq=event["seq"], hash=event["hash"],
                            action=event["action"])
        finally:
            cursor.close()
        ids = {doc["subject_ref"]: doc["subject_id"] for doc in self._subjects.find(
            {"tenant_id": tenant_id, "subject_ref": {"$in": list(heads)}},
            {"_id": 0, "subject_ref": 1, "subject_id": 1})} if heads else {}
        # an erasure whose writer died before deleting the mapping is an erasure all the same
        return [Chain(ref, None if h["action"] == Action.ERASE else ids.get(ref), h["events"], h["seq"],
                      h["hash"]) for ref, h in heads.items()]

    def count_chains(self, tenant_id: str) -> int:
        found = list(self._events.aggregate([
            {"$match": {"tenant_id": tenant_id}}, {"$group": {"_id": "$subject_ref"}}, {"$count": "n"}]))
        return found[0]["n"] if found else 0

    def import_chain(self, tenant_id: str, subject_id: str | None,
                     events: Sequence[dict[str, Any]]) -> int:
        ref = records.chain_ref(tenant_id, events)
        if ref is None:
            return 0
        if events[-1]["action"] == Action.ERASE:
            subject_id = None
        head = self._events.find_one({"tenant_id": tenant_id, "subject_ref": ref},
                                     {"_id": 0, "seq": 1, "hash": 1}, sort=[("seq", DESCENDING)])
        new = records.new_in_chain(events, head["seq"] if head else 0, head["hash"] if head else ZERO_HASH)
        if subject_id is not None:  # the mapping first, as on the write path (module docstring)
            query = {"tenant_id": tenant_id, "subject_id": subject_id}
            doc = self._subjects.find_one(query, {"_id": 0, "subject_ref": 1})
            if doc is None and not self._create_subject(tenant_id, SubjectRecord(subject_id, ref)):
                doc = self._subjects.find_one(query, {"_id": 0, "subject_ref": 1})
            if doc is not None and doc["subject_ref"] != ref:
                raise Conflict(f"subject {subject_id} already has another chain here")
        if new and self._insert_events(new) != len(new):
            raise Conflict(f"chain {ref}: another writer appended to it during the import")
        if subject_id is not None:
            self._load(tenant_id, subject_id)  # catches the record up with the chain and saves it
        return len(new)
