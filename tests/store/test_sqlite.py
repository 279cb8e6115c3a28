"""SQLiteStore only: durability settings, persistence across a restart, the schema version."""

from __future__ import annotations

import sqlite3
import threading

from consent_api.store.sqlite import SCHEMA_VERSION, SQLiteStore
from tests.store.drafts import append, draft, tenant


def test_everything_persists_across_a_reopen(tmp_path):
    path = str(tmp_path / "consent.db")
    store = SQLiteStore(path)
    store.create_tenant(tenant())
    done = append(store, "t1", "u1", draft("push"), draft("sms", "deny"))
    store.close()

    reopened = SQLiteStore(path)

    assert reopened.get_tenant("t1") == tenant()
    assert reopened.get_subject("t1", "u1") == done.record
    assert [e["event_id"] for e in reopened.subject_events("t1", done.record.subject_ref)] == [
        e["event_id"] for e in done.events]
    assert append(reopened, "t1", "u1", draft("push", "withdraw")).events[0]["seq"] == 3


def test_the_file_is_in_wal_mode(tmp_path):
    path = str(tmp_path / "consent.db")
    SQLiteStore(path).close()

    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_every_connection_syncs_fully(tmp_path):
    store = SQLiteStore(str(tmp_path / "consent.db"))
    seen = []

    def check():
        seen.append(store._conn().execute("PRAGMA synchronous").fetchone()[0])

    worker = threading.Thread(target=check)
    worker.start()
    worker.join()
    check()

    assert seen == [2, 2]  # 2 = FULL: an acknowledged commit survives a power loss


def test_the_schema_version_is_recorded_and_kept(tmp_path):
    path = str(tmp_path / "consent.db")
    assert SQLiteStore(path).schema_version() == SCHEMA_VERSION

    assert SQLiteStore(path).schema_version() == SCHEMA_VERSION
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall() == [
            (str(SCHEMA_VERSION),)]


def test_an_in_memory_store_is_shared_by_threads():
    store = SQLiteStore(":memory:")
    worker = threading.Thread(target=lambda: append(store, "t1", "u1", draft("push")))
    worker.start()
    worker.join()

    assert store.get_subject("t1", "u1").seq == 1
