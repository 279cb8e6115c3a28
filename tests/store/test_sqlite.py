"""SQLiteStore only: durability settings, persistence across a restart, the schema version."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from consent_api.errors import Unavailable
from consent_api.store.port import ExportFilter
from consent_api.store.sqlite import PAGE_SIZE, PURGE_BATCH, SCHEMA_VERSION, SQLiteStore
from tests.store.drafts import append, at, draft, tenant, ts


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


def v1_file(path: str) -> None:
    """A database as schema version 1 left it: idempotency records without an expiry."""
    from consent_api.store.sqlite import SCHEMA

    with sqlite3.connect(path) as conn:
        conn.executescript(SCHEMA)
        conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
        conn.execute("INSERT INTO idempotency (tenant_id, scope, key, request_hash, status, body, "
                     "created_at) VALUES ('t1', 'k1', 'old', 'h', 201, '{}', ?)", (ts(),))


def test_a_version_1_file_is_upgraded_on_opening_and_its_records_get_an_expiry(tmp_path):
    path = str(tmp_path / "v1.db")
    v1_file(path)

    store = SQLiteStore(path)

    assert store.schema_version() == SCHEMA_VERSION == 5
    assert store.migrate() == [
        "upgraded to schema version 2: idempotency records expire (DESIGN.md §8 keeps them at "
        "least 24 h, not forever).",
        "upgraded to schema version 3: version counters, so every worker knows when its cached "
        "catalog or keys went stale.",
        "upgraded to schema version 4: events stored in the order they were recorded, so the audit "
        "export reads the file in order.",
        "upgraded to schema version 5: the change feed (GET /v1/changes) and webhook endpoints, messages, "
        "delivery log and lease.",
        f"SQLite {path}: schema version 5"]
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT expires_at FROM idempotency").fetchall() == [(ts(24 * 60),)]
    assert store.claim_idempotency_key("t1", "k1", "old", "h", at(60)).status == 201
    assert store.claim_idempotency_key("t1", "k1", "old", "h", at(24 * 60)) is None
    assert SQLiteStore(path).migrate() == [f"SQLite {path}: schema version 5"]


def test_an_older_file_gets_its_events_rewritten_in_time_order(tmp_path):
    """Versions 1-3 kept events clustered by subject; version 4 keeps them in recorded order."""
    source = SQLiteStore(":memory:")
    refs = {}
    for minute in range(12):  # three subjects, their events interleaved in time
        subject = f"u{minute % 3}"
        refs[subject] = append(source, "t1", subject, draft(f"p{minute}", minutes=minute)).record.subject_ref
    append(source, "t2", "u0", draft("push", tenant_id="t2", minutes=5))
    columns = "tenant_id, subject_ref, seq, recorded_at, event_id, purpose, doc"
    rows = source._conn().execute(f"SELECT {columns} FROM events").fetchall()
    chains = {s: source.subject_events("t1", ref) for s, ref in refs.items()}
    exported = list(source.export_events("t1", ExportFilter()))
    path = str(tmp_path / "v1.db")
    v1_file(path)
    with sqlite3.connect(path) as conn:
        conn.executemany(f"INSERT INTO events ({columns}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                         sorted(rows, key=lambda row: row[:3]))  # the old clustering

    store = SQLiteStore(path)

    assert store.migrate()[2].startswith("upgraded to schema version 4: events stored in the order")
    stored = store._conn().execute("SELECT tenant_id, recorded_at, seq FROM events ORDER BY rowid").fetchall()
    assert stored == sorted(stored)
    assert {s: store.subject_events("t1", ref) for s, ref in refs.items()} == chains
    assert [e["event_id"] for e in store.export_events("t1", ExportFilter())] == [
        e["event_id"] for e in exported]
    with pytest.raises(sqlite3.IntegrityError):  # one event per (tenant, chain, seq), as before
        store._conn().execute(f"INSERT INTO events ({columns}) VALUES (?, ?, ?, ?, ?, ?, ?)", rows[0])
    plan = store._conn().execute(
        "EXPLAIN QUERY PLAN SELECT doc FROM events WHERE tenant_id = ? AND subject_ref = ? ORDER BY seq",
        ("t1", "x")).fetchall()
    assert plan[0][3] == "SEARCH events USING INDEX events_chain (tenant_id=? AND subject_ref=?)"


def test_appends_land_in_time_order_at_the_end_of_the_table(tmp_path):
    store = SQLiteStore(str(tmp_path / "consent.db"))
    for minute in range(9):
        append(store, "t1", f"u{minute % 3}", draft(f"p{minute}", minutes=minute))

    times = [t for (t,) in store._conn().execute("SELECT recorded_at FROM events ORDER BY rowid")]
    assert times == sorted(times) and len(times) == 9


def test_a_newer_schema_than_this_release_knows_is_refused(tmp_path):
    path = str(tmp_path / "future.db")
    SQLiteStore(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")

    with pytest.raises(Unavailable, match="schema version 99 is newer"):
        SQLiteStore(path)


def test_claims_purge_expired_idempotency_records():
    store = SQLiteStore(":memory:")
    for i in range(PURGE_BATCH + 5):
        store.claim_idempotency_key("t1", "k1", f"idem-{i}", "h", at())
    store.claim_idempotency_key("t1", "k1", "young", "h", at(60))

    def keys() -> int:
        return store._conn().execute("SELECT COUNT(*) FROM idempotency").fetchone()[0]

    assert keys() == PURGE_BATCH + 6
    store.claim_idempotency_key("t1", "k1", "new", "h", at(24 * 60 + 1))
    assert keys() == 5 + 2  # one batch purged per claim, bounded
    store.claim_idempotency_key("t1", "k1", "newer", "h", at(24 * 60 + 2))
    assert keys() == 3  # young, new, newer


def test_event_rows_of_a_kilobyte_and_more_stay_on_their_pages(tmp_path):
    store = SQLiteStore(str(tmp_path / "pages.db"))
    point = "设置页 / 隐私 / 个性化推荐开关" * 20  # pads each stored event to ~1.6 KB of JSON
    append(store, "t1", "u1", *[draft(f"p{i}", source={"channel": "ios", "collection_point": point})
                                for i in range(40)])

    conn = store._conn()
    assert conn.execute("PRAGMA page_size").fetchone()[0] == PAGE_SIZE
    stored = conn.execute("SELECT MIN(LENGTH(CAST(doc AS BLOB))) FROM events").fetchone()[0]
    assert stored > 1100
    overflow = conn.execute("SELECT COUNT(*) FROM dbstat WHERE name = 'events' AND pagetype = 'overflow'")
    assert overflow.fetchone()[0] == 0


def test_a_file_made_with_smaller_pages_keeps_them_and_works(tmp_path):
    path = str(tmp_path / "old.db")
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA page_size=4096")
        conn.execute("PRAGMA journal_mode=WAL")
    store = SQLiteStore(path)
    done = append(store, "t1", "u1", draft("push"))

    assert store._conn().execute("PRAGMA page_size").fetchone()[0] == 4096
    assert store.get_subject("t1", "u1") == done.record
