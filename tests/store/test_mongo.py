"""MongoStore only: its indexes, its retries when a concurrent writer takes the head, its repair
of records left behind by a writer that died, and its translation of driver errors."""

from __future__ import annotations

import socket
from datetime import datetime, timedelta, timezone
from typing import Any

import mongomock
import pymongo
import pytest
from pymongo import ReadPreference
from pymongo.errors import AutoReconnect, BulkWriteError, OperationFailure, ServerSelectionTimeoutError

from consent_api.domain.clock import format_ts
from consent_api.domain.ledger import seal, verify_chain
from consent_api.domain.projection import project
from consent_api.errors import Unavailable
from consent_api.store.mongo import INDEXES, SHARD_KEYS, UNSHARDED, MongoStore
from consent_api.store.open import MongoOptions, open_store
from consent_api.store.port import ExportFilter
from tests.store.drafts import append, draft, fresh


class WriterDied(Exception):
    """Stands for a process killed between two writes."""


def die(*args: Any, **kwargs: Any) -> None:
    raise WriterDied


def append_dying_at(monkeypatch, store, step: str, *drafts, owner: Any = None, **kwargs: Any) -> None:
    """Append drafts to t1/u1 by a writer that dies at step (a method of store, or of owner)."""
    monkeypatch.setattr(store if owner is None else owner, step, die)
    with pytest.raises(WriterDied):
        append(store, "t1", "u1", *drafts, **kwargs)
    monkeypatch.undo()


def subject_doc(store, subject_id: str = "u1") -> dict | None:
    return store.db["subjects"].find_one({"tenant_id": "t1", "subject_id": subject_id}, {"_id": 0})


def chain(store, ref: str) -> list[dict]:
    return store.subject_events("t1", ref)


# --- indexes and stored shapes -----------------------------------------------------------------

def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unreachable_store() -> MongoStore:
    """A MongoStore on a real pymongo client whose server is not there."""
    client = pymongo.MongoClient(f"mongodb://127.0.0.1:{closed_port()}/", serverSelectionTimeoutMS=50,
                                 connectTimeoutMS=50, tz_aware=True)
    return MongoStore(client, "consent_unreachable")


def assert_indexes_exist(db) -> None:
    for collection, keys, options in INDEXES:
        info = db[collection].index_information()
        assert options["name"] in info, (collection, options["name"])
        assert [tuple(k) for k in info[options["name"]]["key"]] == keys
        assert bool(info[options["name"]].get("unique")) == bool(options.get("unique"))
        assert info[options["name"]].get("expireAfterSeconds") == options.get("expireAfterSeconds")


def test_opening_a_store_contacts_no_server_and_its_calls_answer_unavailable():
    store = unreachable_store()  # would raise here if construction needed the server

    with pytest.raises(Unavailable, match="MongoDB store"):
        store.ping()
    with pytest.raises(Unavailable):
        store.get_tenant("t1")
    store.close()


def test_the_first_operation_creates_every_declared_index():
    store = open_store("mongomock://fresh")
    assert store.db.list_collection_names() == []

    assert store.get_tenant("t1") is None

    assert_indexes_exist(store.db)


def test_migrate_reports_every_index_and_can_run_again(mongo_store):
    lines = mongo_store.migrate()

    assert_indexes_exist(mongo_store.db)
    for collection, _, options in INDEXES:
        assert any(line.startswith(f"{collection}: index {options['name']} (") for line in lines)
    assert "idempotency: index expires_at (expires_at: 1) expireAfterSeconds=0 ensured" in lines
    before = {c: sorted(mongo_store.db[c].index_information()) for c, _, _ in INDEXES}
    assert mongo_store.migrate()[1:] == lines[1:]
    assert {c: sorted(mongo_store.db[c].index_information()) for c, _, _ in INDEXES} == before


def test_a_store_that_was_unreachable_creates_its_indexes_once_the_server_answers(monkeypatch):
    store = open_store("mongomock://late")
    down = ServerSelectionTimeoutError("no primary")

    def unreachable(*args, **kwargs):
        raise down

    monkeypatch.setattr(mongomock.Collection, "create_index", unreachable)
    with pytest.raises(Unavailable):
        store.ping()
    with pytest.raises(Unavailable):
        append(store, "t1", "u1", draft("push"))
    monkeypatch.undo()

    store.ping()

    assert_indexes_exist(store.db)
    assert append(store, "t1", "u1", draft("push")).events[0]["seq"] == 1


def test_an_index_declared_differently_by_an_earlier_release_is_rebuilt():
    store = open_store("mongomock://upgraded")
    store.db["subjects"].create_index([("tenant_id", 1), ("subject_ref", 1)], name="tenant_id_subject_ref",
                                      unique=True)  # as the first MongoStore declared it

    lines = store.migrate()

    assert "subjects: index tenant_id_subject_ref (tenant_id: 1, subject_ref: 1) rebuilt (its definition " \
           "changed)" in lines
    assert_indexes_exist(store.db)
    assert "subjects: index tenant_id_subject_ref (tenant_id: 1, subject_ref: 1) ensured" in store.migrate()


def test_an_index_the_server_refuses_is_named_in_the_error(monkeypatch):
    store = open_store("mongomock://refused")

    def refuse(self, keys, **options):
        raise OperationFailure("cannot create unique index over {tenant_id: 1} with shard key pattern")

    monkeypatch.setattr(mongomock.Collection, "create_index", refuse)
    with pytest.raises(Unavailable, match=r"index tenants\.id cannot be created: cannot create unique"):
        store.migrate()


# --- sharding ------------------------------------------------------------------------------------

def test_every_collection_is_either_sharded_or_listed_as_small():
    collections = {c for c, _, _ in INDEXES}
    assert collections == set(SHARD_KEYS) | set(UNSHARDED)
    assert not set(SHARD_KEYS) & set(UNSHARDED)


@pytest.mark.parametrize("collection", sorted(SHARD_KEYS))
def test_unique_indexes_of_sharded_collections_start_with_the_shard_key(collection):
    # MongoDB enforces a unique index on a sharded collection only when the shard key's fields
    # are a prefix of the index's fields (a hashed shard field matches an ascending one).
    shard_fields = [name for name, _ in SHARD_KEYS[collection]]
    for name, keys, options in INDEXES:
        if name == collection and options.get("unique"):
            assert [k for k, _ in keys][:len(shard_fields)] == shard_fields, options["name"]
    assert sum(1 for direction in dict(SHARD_KEYS[collection]).values() if direction == "hashed") == 1


def test_every_hot_lookup_names_the_whole_shard_key():
    # the point lookups of the write and read paths: each one reaches exactly one shard
    assert [k for k, _ in SHARD_KEYS["events"]] == ["tenant_id", "subject_ref"]
    assert [k for k, _ in SHARD_KEYS["subjects"]] == ["tenant_id", "subject_id"]
    assert [k for k, _ in SHARD_KEYS["idempotency"]] == ["tenant_id", "scope", "key"]


class RecordingAdmin:
    def __init__(self):
        self.commands: list[tuple] = []

    def command(self, name, value, **kwargs):
        self.commands.append((name, value, kwargs))
        return {"ok": 1}


def test_shard_enables_sharding_and_shards_the_big_collections(mongo_store, monkeypatch):
    admin = RecordingAdmin()
    monkeypatch.setattr(mongo_store._client, "admin", admin, raising=False)
    created = []
    monkeypatch.setattr(mongomock.Collection, "create_index",
                        lambda self, keys, **options: created.append((self.name, keys, options["name"])))

    lines = mongo_store.shard()

    db = mongo_store.db.name
    assert admin.commands[0] == ("enableSharding", db, {})
    assert admin.commands[1:] == [("shardCollection", f"{db}.{c}", {"key": dict(k)}) for c, k in SHARD_KEYS.items()]
    assert created == [(c, k, "shard_key") for c, k in SHARD_KEYS.items()]
    assert "events: sharded on {tenant_id: 1, subject_ref: hashed}" in lines


# --- reads for exports ---------------------------------------------------------------------------

def test_exports_read_from_a_secondary_when_one_is_there_and_everything_else_from_the_primary():
    store = open_store("mongomock://reads")
    assert store._export_events.read_preference == ReadPreference.SECONDARY_PREFERRED
    assert store._events.read_preference == ReadPreference.PRIMARY
    assert store._subjects.read_preference == ReadPreference.PRIMARY

    primary = open_store("mongomock://reads", MongoOptions(export_read_preference="primary"))
    assert primary._export_events.read_preference == ReadPreference.PRIMARY
    with pytest.raises(ValueError, match="read preference"):
        open_store("mongomock://reads", MongoOptions(export_read_preference="secondaryFirst"))


# --- idempotency expiry ----------------------------------------------------------------------------

def test_idempotency_records_expire_by_a_ttl_index_on_a_real_date(mongo_store):
    mongo_store.claim_idempotency_key("t1", "k1", "idem", "h", fresh())

    doc = mongo_store.db["idempotency"].find_one({"key": "idem"})
    assert isinstance(doc["expires_at"], datetime)
    assert doc["expires_at"].replace(tzinfo=timezone.utc) == fresh() + timedelta(hours=24)


def test_migrate_gives_records_from_before_expiry_an_expiry(mongo_store):
    mongo_store.migrate()
    mongo_store.db["idempotency"].insert_one({
        "tenant_id": "t1", "scope": "k1", "key": "old", "request_hash": "h", "status": 201,
        "body": "{}", "subject_ref": None, "created_at": format_ts(fresh())})

    assert "idempotency: 1 records without expires_at given one" in mongo_store.migrate()

    doc = mongo_store.db["idempotency"].find_one({"key": "old"})
    assert doc["expires_at"].replace(tzinfo=timezone.utc) == fresh() + timedelta(hours=24)
    assert "idempotency: 0 records without expires_at given one" in mongo_store.migrate()


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
    append_dying_at(monkeypatch, mongo_store, "_advance", draft("push", "withdraw", minutes=1), draft("sms", minutes=1))
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
    append_dying_at(monkeypatch, mongo_store, "_insert_events", draft("push"))
    assert subject_doc(mongo_store)["seq"] == 0

    assert mongo_store.get_subject("t1", "u1") is None
    assert mongo_store.list_subjects("t1", None, 10) == []
    done = append(mongo_store, "t1", "u1", draft("push"))
    assert [e["seq"] for e in done.events] == [1] and mongo_store.get_subject("t1", "u1") == done.record


def test_an_erasure_whose_writer_died_is_finished_by_the_next_reader(mongo_store, monkeypatch):
    old = append(mongo_store, "t1", "u1", draft("push")).record
    mongo_store.claim_idempotency_key("t1", "k1", "idem", "h", fresh())
    mongo_store.complete_idempotency_key("t1", "k1", "idem", 201, "{}", old.subject_ref)
    append_dying_at(monkeypatch, mongo_store, "_finish_erasure", draft(None, "erase", minutes=1), erase=True)

    assert mongo_store.get_subject("t1", "u1") is None
    assert subject_doc(mongo_store) is None
    assert mongo_store.claim_idempotency_key("t1", "k1", "idem", "h2", fresh(2)) is None
    assert [e["subject_id"] for e in mongo_store.export_events("t1", ExportFilter())] == [None, None]


def test_a_writer_that_finds_an_unfinished_erasure_starts_a_new_subject(mongo_store, monkeypatch):
    old = append(mongo_store, "t1", "u1", draft("push")).record
    append_dying_at(monkeypatch, mongo_store, "_finish_erasure", draft(None, "erase", minutes=1), erase=True)

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

    def find(self, *args: Any, **kwargs: Any) -> UnreachableMidway:
        return self

    def sort(self, *args: Any) -> UnreachableMidway:
        return self

    def batch_size(self, size: int) -> UnreachableMidway:
        return self

    def __iter__(self):
        raise ServerSelectionTimeoutError("no primary")

    def close(self) -> None:
        pass


def test_connection_errors_become_unavailable(mongo_store, monkeypatch):
    monkeypatch.setattr(mongo_store, "_tenants", Unreachable(AutoReconnect("connection reset")))
    monkeypatch.setattr(mongo_store, "_subjects", Unreachable(ServerSelectionTimeoutError("no primary")))
    monkeypatch.setattr(mongo_store, "_export_events", UnreachableMidway())

    with pytest.raises(Unavailable):
        mongo_store.get_tenant("t1")
    with pytest.raises(Unavailable):
        append(mongo_store, "t1", "u1", draft("push"))
    stream = mongo_store.export_events("t1", ExportFilter())
    with pytest.raises(Unavailable):
        next(stream)

