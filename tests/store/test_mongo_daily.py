"""MongoStore only: the per-day counters when a writer dies. The record's move past events is
what counts them, once: a reader that repairs a record counts what the dead writer stored, a
racing writer and repairer never both count, and a death between the move and the $inc is what
rebuild-state reports and repairs."""

from __future__ import annotations

import pytest

from consent_api.domain.projection import project
from consent_api.services import stats
from consent_api.services.rebuild import rebuild_state
from consent_api.store.mongo import daily as mongo_daily
from tests.store.drafts import append, draft, purpose, tenant
from tests.store.test_mongo import append_dying_at


@pytest.fixture
def store(mongo_store):
    mongo_store.create_tenant(tenant("t1"))
    mongo_store.put_purpose("t1", purpose("push", validity_days=3))
    mongo_store.put_purpose("t1", purpose("sms"))
    return mongo_store


def test_a_reader_that_repairs_a_record_counts_what_the_dead_writer_stored(store, monkeypatch):
    append(store, "t1", "u1", draft("push"))
    append_dying_at(monkeypatch, store, "_advance", draft("push", "withdraw", minutes=1), draft("sms", minutes=1))
    assert stats.stored(store, "t1") != stats.recount(store, "t1")  # stored, not yet counted

    store.get_subject("t1", "u1")

    assert stats.stored(store, "t1") == stats.recount(store, "t1")
    store.get_subject("t1", "u1")  # nothing more to count
    assert stats.stored(store, "t1") == stats.recount(store, "t1")


def test_an_erasure_finished_by_a_reader_is_counted_once(store, monkeypatch):
    append(store, "t1", "u1", draft("push"), draft("sms"))
    append_dying_at(monkeypatch, store, "_finish_erasure", draft(None, "erase", minutes=60), erase=True)

    assert store.get_subject("t1", "u1") is None
    assert store.get_subject("t1", "u1") is None

    assert stats.stored(store, "t1") == stats.recount(store, "t1")


def test_a_writer_continuing_a_chain_a_repairer_half_caught_up_counts_only_the_rest(store, monkeypatch):
    append(store, "t1", "u1", draft("push"))
    # the writer stores two events and dies; a repairer catches the record up to the first only
    append_dying_at(monkeypatch, store, "_advance", draft("sms", minutes=1), draft("sms", "withdraw", minutes=2))
    first = store.subject_events("t1", store.db["subjects"].find_one({})["subject_ref"], 0)[:2]
    store._advance("t1", project("u1", first[0]["subject_ref"], first), first)

    store.get_subject("t1", "u1")

    assert stats.stored(store, "t1") == stats.recount(store, "t1")


def test_a_death_between_the_move_and_the_count_is_found_and_repaired_by_rebuild_state(store, monkeypatch):
    append(store, "t1", "u1", draft("push"))
    append_dying_at(monkeypatch, store, "add", draft("push", "withdraw", minutes=1), owner=mongo_daily)

    report = rebuild_state(store, fix=False)
    assert report.count_differences == [
        "t1 2026-03-01 push policy 2026-01: withdrawals 0 (ledger: 1), allowed 1 (ledger: 0), ios 1 (ledger: 2)",
        "t1 2026-03-04 push policy 2026-01: allowed -1 (ledger: 0)"]  # the expiry the withdrawal cancelled
    assert rebuild_state(store).count_differences
    assert rebuild_state(store, fix=False).count_differences == []
