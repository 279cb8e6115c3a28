"""MongoStore only: its indexes, its retries when a concurrent writer takes the head, its repair
of records left behind by a writer that died, and its translation of driver errors."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo.errors import AutoReconnect, BulkWriteError, ServerSelectionTimeoutError

from consent_api.domain.ledger import seal, verify_chain
from consent_api.domain.projection import project
from consent_api.errors import Unavailable
from consent_api.store.mongo import INDEXES
from consent_api.store.port import ExportFilter
from tests.store.drafts import append, at, draft


class WriterDied(Exception):
    """Stands for a process killed between two writes."""


def die(*args: Any, **kwargs: Any) -> None:
    raise WriterDied


def subject_doc(store, subject_id: str = "u1") -> dict | None:
    return store.db["subjects"].find_one({"tenant_id": "t1", "subject_id": subject_id}, {"_id": 0})


def chain(store, ref: str) -> list[dict]:
    return store.subject_events("t1", ref)


# --- indexes and stored shapes -----------------------------------------------------------------

def test_every_declared_index_exists_after_construction(mongo_store):
    for collection, keys, options in INDEXES:
        info = mongo_store.db[collection].index_information()
        assert options["name"] in info, (collection, options["name"])
        assert [tuple(k) for k in info[options["name"]]["key"]] == keys
        assert bool(info[options["name"]].get("unique")) == bool(options.get("unique"))


def test_ensure_indexes_can_run_again(mongo_store):
    before = {c: sorted(mongo_store.db[c].index_information()) for c, _, _ in INDEXES}
    mongo_store.ensure_indexes()
    assert {c: sorted(mongo_store.db[c].index_information()) for c, _, _ in INDEXES} == before


def test_events_are_stored_without_subject_id_and_grants_are_indexable(mongo_store):
    append(mongo_store, "t1", "u1", draft("push"), draft("sms", "deny"), draft("camera.roll"))
    append(mongo_store, "t1", "u1", draft("push", "withdraw", minutes=1))

    stored = mongo_store.db["events"].find_one({"tenant_id": "t1", "seq": 1})
    assert "subject_id" not in stored
    assert subject_doc(mongo_store)["granted"] == ["camera.roll"]


# --- a concurrent writer takes the head ----------------------------------------------------------

def test_losing_the_head_replans_on_the_new_head(mongo_store):
    append(mongo_store, "t1", "u1", draft("push"))
    records_seen = []

    def plan(record):
        records_seen.append(record)
        if len(records_seen) == 1:  # another writer appends between our read and our insert
            append(mongo_store, "t1", "u1", draft("push", "withdraw", minutes=1, event_id="ev_other"))
        return [draft("sms", minutes=2, event_id="ev_ours")]

    done = mongo_store.append("t1", "u1", plan)

    assert [r.seq for r in records_seen] == [1, 2]
    assert records_seen[1].purposes["push"].action == "withdraw"
    events = chain(mongo_store, done.record.subject_ref)
    assert [(e["seq"], e["event_id"]) for e in events[1:]] == [(2, "ev_other"), (3, "ev_ours")]
    assert verify_chain(events) == (3, None)
    assert mongo_store.get_subject("t1", "u1") == done.record
    assert done.record == project("u1", done.record.subject_ref, events)


def test_losing_the_race_to_create_a_subject_joins_the_winner(mongo_store):
    calls = []

    def plan(record):
        calls.append(record)
        if len(calls) == 1:  # another writer creates the subject under its own subject_ref
            append(mongo_store, "t1", "u1", draft("push", event_id="ev_other"))
        return [draft("sms", event_id="ev_ours")]

    done = mongo_store.append("t1", "u1", plan)

    winner = calls[1].subject_ref
    assert calls[0].subject_ref != winner and done.record.subject_ref == winner
    assert [e["event_id"] for e in chain(mongo_store, winner)] == ["ev_other", "ev_ours"]
    assert mongo_store.db["events"].count_documents({"subject_ref": calls[0].subject_ref}) == 0


class SplitBatch:
    """An events collection on which another writer gets in after the first event of our batch."""

    def __init__(self, events: Any, store, foreign: dict):
        self._events, self._store, self._foreign = events, store, foreign
        self.split = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._events, name)

    def insert_many(self, documents: list[dict], ordered: bool = True) -> Any:
        if self.split or len(documents) < 2:
            return self._events.insert_many(documents, ordered=ordered)
        self.split = True
        self._events.insert_one(documents[0])
        # the other writer caught up on our first event and chained its own after it
        record = self._store.get_subject("t1", "u1")
        [theirs] = seal([self._foreign], record)
        self._events.insert_one({k: v for k, v in theirs.items() if k != "subject_id"})
        raise BulkWriteError({"writeErrors": [{"index": 1, "code": 11000, "errmsg": "E11000"}],
                              "writeConcernErrors": [], "nInserted": 1})


def test_a_split_batch_writes_each_remaining_draft_once(mongo_store, monkeypatch):
    append(mongo_store, "t1", "u1", draft("location", "prompt"))
    split = SplitBatch(mongo_store._events, mongo_store, draft("camera", "prompt", event_id="ev_other"))
    monkeypatch.setattr(mongo_store, "_events", split)

    done = append(mongo_store, "t1", "u1", draft("push", event_id="ev_1"), draft("sms", event_id="ev_2"),
                  draft("location", event_id="ev_3"))

    events = chain(mongo_store, done.record.subject_ref)
    assert split.split
    assert [e["event_id"] for e in events[1:]] == ["ev_1", "ev_other", "ev_2", "ev_3"]
    assert [e["event_id"] for e in done.events] == ["ev_1", "ev_2", "ev_3"]
    assert verify_chain(events) == (5, None)
    assert mongo_store.get_subject("t1", "u1") == project("u1", done.record.subject_ref, events)


def test_a_split_withdraw_all_still_withdraws_everything(mongo_store, monkeypatch):
    append(mongo_store, "t1", "u1", draft("location"), draft("push"), draft("sms"))
    split = SplitBatch(mongo_store._events, mongo_store, draft("camera", "prompt"))
    monkeypatch.setattr(mongo_store, "_events", split)

    def withdraw_all(record):  # depends on the record: a re-plan no longer lists what we withdrew
        return [draft(key, "withdraw", minutes=1) for key, rec in sorted(record.purposes.items())
                if rec.action == "grant"]

    mongo_store.append("t1", "u1", withdraw_all)

    record = mongo_store.get_subject("t1", "u1")
    events = chain(mongo_store, record.subject_ref)
    assert split.split
    assert [(e["purpose"], e["action"]) for e in events[3:]] == [
        ("location", "withdraw"), ("camera", "prompt"), ("push", "withdraw"), ("sms", "withdraw")]
    assert verify_chain(events) == (7, None)
    assert mongo_store.allowed_candidates("t1", "push", None, 10) == []


# --- a writer died: readers and the next writer repair ------------------------------------------

@pytest.fixture
def died_before_update(mongo_store, monkeypatch):
    """u1 granted push; then a writer withdrew it and died before updating the subject document."""
    append(mongo_store, "t1", "u1", draft("push"))
    monkeypatch.setattr(mongo_store, "_advance", die)
    with pytest.raises(WriterDied):
        append(mongo_store, "t1", "u1", draft("push", "withdraw", minutes=1), draft("sms", minutes=1))
    monkeypatch.undo()
    assert subject_doc(mongo_store)["seq"] == 1
    return mongo_store


def test_get_subject_repairs_a_record_behind_its_events(died_before_update):
    store = died_before_update

    record = store.get_subject("t1", "u1")

    events = chain(store, record.subject_ref)
    assert record == project("u1", record.subject_ref, events) and record.seq == 3
    assert subject_doc(store)["seq"] == 3 and subject_doc(store)["granted"] == ["sms"]


def test_the_next_append_repairs_and_continues_the_chain(died_before_update):
    store = died_before_update

    done = append(store, "t1", "u1", draft("location", minutes=2))

    events = chain(store, done.record.subject_ref)
    assert [e["seq"] for e in events] == [1, 2, 3, 4] and verify_chain(events) == (4, None)
    assert done.record == project("u1", done.record.subject_ref, events)
    assert subject_doc(store)["seq"] == 4


def test_lists_and_audiences_repair_what_they_return(died_before_update):
    store = died_before_update
    append(store, "t1", "u2", draft("push"))
    append(store, "t1", "u3", draft("push"))

    # u1's document still says push is granted; the page is refilled past it
    assert [r.subject_id for r in store.allowed_candidates("t1", "push", None, 2)] == ["u2", "u3"]
    assert store.get_subjects("t1", ["u1"])["u1"].seq == 3
    assert store.list_subjects("t1", None, 1)[0] == store.get_subject("t1", "u1")


def test_a_subject_whose_creator_died_before_any_event_is_unknown(mongo_store, monkeypatch):
    monkeypatch.setattr(mongo_store, "_insert_events", die)
    with pytest.raises(WriterDied):
        append(mongo_store, "t1", "u1", draft("push"))
    monkeypatch.undo()
    assert subject_doc(mongo_store)["seq"] == 0

    assert mongo_store.get_subject("t1", "u1") is None
    assert mongo_store.list_subjects("t1", None, 10) == []
    done = append(mongo_store, "t1", "u1", draft("push"))
    assert [e["seq"] for e in done.events] == [1] and mongo_store.get_subject("t1", "u1") == done.record


def test_an_erasure_whose_writer_died_is_finished_by_the_next_reader(mongo_store, monkeypatch):
    old = append(mongo_store, "t1", "u1", draft("push")).record
    mongo_store.claim_idempotency_key("t1", "k1", "idem", "h", at())
    mongo_store.complete_idempotency_key("t1", "k1", "idem", 201, "{}", old.subject_ref)
    monkeypatch.setattr(mongo_store, "_finish_erasure", die)
    with pytest.raises(WriterDied):
        append(mongo_store, "t1", "u1", draft(None, "erase", minutes=1), erase=True)
    monkeypatch.undo()

    assert mongo_store.get_subject("t1", "u1") is None
    assert subject_doc(mongo_store) is None
    assert mongo_store.claim_idempotency_key("t1", "k1", "idem", "h2", at(2)) is None
    assert [e["subject_id"] for e in mongo_store.export_events("t1", ExportFilter())] == [None, None]


def test_a_writer_that_finds_an_unfinished_erasure_starts_a_new_subject(mongo_store, monkeypatch):
    old = append(mongo_store, "t1", "u1", draft("push")).record
    monkeypatch.setattr(mongo_store, "_finish_erasure", die)
    with pytest.raises(WriterDied):
        append(mongo_store, "t1", "u1", draft(None, "erase", minutes=1), erase=True)
    monkeypatch.undo()

    done = append(mongo_store, "t1", "u1", draft("sms", minutes=2))

    assert done.record.subject_ref != old.subject_ref and done.events[0]["seq"] == 1
    assert [e["action"] for e in chain(mongo_store, old.subject_ref)] == ["grant", "erase"]


# --- driver errors ---------------------------------------------------------------------------------

class Unreachable:
    """A collection whose server has gone away."""

    def __init__(self, error: Exception):
        self._error = error

    def __getattr__(self, name: str) -> Any:
        raise self._error


class UnreachableMidway:
    """An events collection whose cursor breaks while the export streams."""

    def find(self, *args: Any, **kwargs: Any) -> "UnreachableMidway":
        return self

    def sort(self, *args: Any) -> "UnreachableMidway":
        return self

    def batch_size(self, size: int) -> "UnreachableMidway":
        return self

    def __iter__(self):
        raise ServerSelectionTimeoutError("no primary")

    def close(self) -> None:
        pass


def test_connection_errors_become_unavailable(mongo_store, monkeypatch):
    monkeypatch.setattr(mongo_store, "_tenants", Unreachable(AutoReconnect("connection reset")))
    monkeypatch.setattr(mongo_store, "_subjects", Unreachable(ServerSelectionTimeoutError("no primary")))
    monkeypatch.setattr(mongo_store, "_events", UnreachableMidway())

    with pytest.raises(Unavailable):
        mongo_store.get_tenant("t1")
    with pytest.raises(Unavailable):
        append(mongo_store, "t1", "u1", draft("push"))
    stream = mongo_store.export_events("t1", ExportFilter())
    with pytest.raises(Unavailable):
        next(stream)

