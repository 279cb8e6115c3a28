"""SQLiteStore's group commit: concurrent appends share transactions, each caller is answered
only after its transaction committed, and one failing plan fails alone."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest

from consent_api.domain.ledger import verify_chain
from consent_api.errors import Invalid, Unavailable
from consent_api.store.port import ExportFilter
from consent_api.store.sqlite import SQLiteStore
from consent_api.store.sqlite.group_commit import Checkpointer, GroupCommit, WriteLock
from tests.store.drafts import append, draft, tenant


@pytest.fixture
def store(tmp_path):
    store = SQLiteStore(str(tmp_path / "consent.db"))
    yield store
    store.close()


@pytest.fixture
def batches(monkeypatch):
    """The sizes of the transactions the writer thread commits."""
    sizes: list[int] = []
    commit = GroupCommit._commit

    def counting(self, conn, jobs):
        sizes.append(len(jobs))
        return commit(self, conn, jobs)

    monkeypatch.setattr(GroupCommit, "_commit", counting)
    return sizes


def one_batch(store, *calls):
    """Run calls (functions of no arguments, each one write) so that they share one transaction:
    while the test holds the write lock they queue, in order; the writer takes them all once it
    gets the lock. Returns their outcomes (results or exceptions)."""
    with ThreadPoolExecutor(len(calls)) as pool:
        with store._write_lock:
            futures = []
            for call in calls:
                futures.append(pool.submit(call))
                while len(store._writer._queue) < len(futures):
                    threading.Event().wait(0.002)
        outcomes = []
        for future in futures:
            try:
                outcomes.append(future.result())
            except Exception as exc:  # noqa: BLE001
                outcomes.append(exc)
        return outcomes


def committed_events(path: str, subject_ref: str) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT COUNT(*) FROM events WHERE subject_ref = ?", (subject_ref,)).fetchone()[0]


def test_concurrent_appends_share_transactions_and_are_committed_when_answered(store, batches):
    start = threading.Barrier(16)

    def write(n: int):
        start.wait()
        done = append(store, "t1", f"u{n % 4}", draft("push"), draft("sms", "deny"))
        # answered means committed: another connection sees the events already
        assert committed_events(store.path, done.record.subject_ref) >= done.events[-1]["seq"]
        return done

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(write, range(64)))

    assert len(results) == 64 and sum(batches) == 64
    assert max(batches) > 1  # writers that queued during a commit shared the next one
    for n in range(4):
        record = store.get_subject("t1", f"u{n}")
        assert verify_chain(store.subject_events("t1", record.subject_ref)) == (32, None)


def test_a_plan_refusing_on_the_newer_record_fails_alone_in_its_batch(store, batches):
    """Appends are planned on a snapshot; one whose subject changed before its commit is planned
    again inside the batch, and only it fails when that plan refuses."""

    def only_the_first(record):
        if record.seq:
            raise Invalid("the subject exists already")
        return [draft("push")]

    first, second, other = one_batch(store, lambda: store.append("t1", "u2", only_the_first),
                                     lambda: store.append("t1", "u2", only_the_first),
                                     lambda: append(store, "t1", "u3", draft("sms")))
    assert batches[-1] == 3
    assert first.events[0]["seq"] == 1
    assert isinstance(second, Invalid) and str(second) == "the subject exists already"
    assert other.events[0]["seq"] == 1
    assert store.get_subject("t1", "u2").seq == 1


def test_one_batch_keeps_the_order_of_grants_and_erasures(store, batches):
    granted, denied, other, before, erased, after = one_batch(
        store,
        lambda: append(store, "t1", "u5", draft("push")),
        lambda: append(store, "t1", "u5", draft("push", "deny")),
        lambda: append(store, "t1", "u6", draft("push")),
        lambda: append(store, "t1", "u7", draft("push")),
        lambda: append(store, "t1", "u7", draft(None, "erase"), erase=True),
        lambda: append(store, "t1", "u7", draft("sms")))
    assert batches[-1] == 6
    assert [e["seq"] for e in granted.events + denied.events] == [1, 2]
    assert [r.subject_id for r in store.allowed_candidates("t1", "push", None, 10)] == ["u6"]
    assert erased.events[0]["seq"] == 2 and erased.events[0]["subject_ref"] == before.record.subject_ref
    assert after.events[0]["seq"] == 1 and after.record.subject_ref != before.record.subject_ref
    assert store.get_subject("t1", "u7") == after.record
    assert verify_chain(store.subject_events("t1", before.record.subject_ref)) == (2, None)


def test_a_plan_refusing_on_its_snapshot_never_reaches_the_writer(store, batches):
    def refuse(record):
        raise Invalid("refused by the plan")

    with pytest.raises(Invalid, match="refused by the plan"):
        store.append("t1", "u1", refuse)
    assert batches == [] and store.get_subject("t1", "u1") is None


def test_a_busy_database_fails_the_batch_and_the_writer_carries_on(tmp_path):
    path = str(tmp_path / "consent.db")
    store = SQLiteStore(path, busy_timeout_s=0.2)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    with pytest.raises(Unavailable):
        append(store, "t1", "u1", draft("push"))
    blocker.execute("ROLLBACK")
    assert append(store, "t1", "u1", draft("push")).events[0]["seq"] == 1
    store.close()


def test_a_forked_worker_gets_its_own_writer_thread(store):
    append(store, "t1", "u-parent", draft("push"))  # the parent's writer thread is running

    def in_child(queue) -> None:  # the inherited store, as a server forked after start-up has it
        queue.put(append(store, "t1", "u-child", draft("push")).events[0]["seq"])

    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=in_child, args=(queue,))
    child.start()
    child.join(20)
    assert child.exitcode == 0
    assert queue.get(timeout=1) == 1
    assert store.get_subject("t1", "u-child").seq == 1
    assert append(store, "t1", "u-parent", draft("sms")).events[0]["seq"] == 2


def test_close_finishes_and_stops_the_writer(store):
    append(store, "t1", "u1", draft("push"))
    threads = store._writer._threads
    store.close()
    assert threads and not any(thread.is_alive() for thread in threads)
    assert append(store, "t1", "u1", draft("sms")).events[0]["seq"] == 2  # a new writer starts


def test_no_write_is_answered_before_an_fsync_of_the_log_that_follows_its_commit(store, monkeypatch):
    """The writer's COMMIT runs with synchronous=NORMAL (no fsync inside the lock); the fsync of
    the WAL comes after it and before the answer, as synchronous=FULL would have done."""
    log: list[str] = []
    apply, sync = store._writer._apply, store._sync_wal
    monkeypatch.setattr(store._writer, "_sync", lambda: (log.append("fsync"), sync())[1])
    fsyncs: list[int] = []
    real_fdatasync = os.fdatasync
    monkeypatch.setattr(os, "fdatasync", lambda fd: (fsyncs.append(fd), real_fdatasync(fd))[1])

    def logged_apply(conn, payloads):
        outcomes = apply(conn, payloads)
        log.append("commit")  # the batch's COMMIT follows immediately
        return outcomes

    monkeypatch.setattr(store._writer, "_apply", logged_apply)
    for n in range(3):
        append(store, "t1", "u1", draft("push"))
        log.append("answered")
    assert log == ["commit", "fsync", "answered"] * 3
    assert fsyncs and os.path.samefile(f"/proc/self/fd/{fsyncs[0]}", store.path + "-wal")
    with sqlite3.connect(store.path) as check:
        assert check.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 3


def test_the_writer_leaves_checkpoints_to_the_checkpointer(store):
    """SQLite's automatic checkpoint would run inside the write lock, in the COMMIT that crosses
    1,000 pages; the group commit's connection never checkpoints."""
    conn = store._writer_connection()
    try:
        assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    finally:
        conn.close()
    plain = store._connect()
    try:
        assert plain.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000  # every other connection
    finally:
        plain.close()


def test_a_checkpoint_round_copies_what_writers_appended_meanwhile_so_the_log_starts_over(
        tmp_path, monkeypatch):
    """A round copies the log while writers go on, then, under the write lock, the pages they
    appended meanwhile; only a log copied to its end starts over from its beginning at the next
    write. Copied only up to wherever the writers had got, it would grow with every write
    (676 MB in 12 s of a loaded server before the second step existed)."""
    monkeypatch.setattr(Checkpointer, "committed", lambda self: None)  # rounds run only when called here
    path = tmp_path / "consent.db"
    store = SQLiteStore(str(path))
    store.create_tenant(tenant())
    wal = tmp_path / "consent.db-wal"

    def write(prefix: str, n: int) -> None:
        with ThreadPoolExecutor(6) as pool:
            list(pool.map(lambda i: append(store, "t1", f"{prefix}-{i}", draft("push")), range(n)))

    unlocked = Checkpointer.copy

    def copy_while_writers_go_on(conn):
        unlocked(conn)
        if not store._write_lock._thread_lock.locked():  # the first step: writers append meanwhile
            write("meanwhile", 100)

    write("before", 500)
    monkeypatch.setattr(store._checkpointer, "copy", copy_while_writers_go_on)
    conn = store._connect()
    try:
        store._checkpointer.checkpoint(conn)
    finally:
        conn.close()
    size = wal.stat().st_size  # a log reused from its start never shrinks, and grows only past its end
    write("after", 300)
    assert wal.stat().st_size == size
    store.close()
    assert sum(1 for _ in SQLiteStore(str(path)).export_events("t1", ExportFilter())) == 900


def test_close_returns_when_the_writer_cannot_connect(tmp_path):
    """A batch that fails before the writer has a connection still honours the stop."""

    def refuse():
        raise sqlite3.OperationalError("unable to open database file")

    writer = GroupCommit(refuse, lambda conn, payloads: payloads, lambda exc: Unavailable(str(exc)),
                         WriteLock(str(tmp_path / "lock")), lambda: None)
    with pytest.raises(Unavailable):
        writer.run("a write")
    threads = writer._threads
    closing = threading.Thread(target=writer.close)
    closing.start()
    closing.join(30)
    assert not closing.is_alive() and not any(thread.is_alive() for thread in threads)


def test_closing_the_checkpointer_cuts_its_wait_short(tmp_path, monkeypatch):
    """The checkpointer waits between rounds on an event that close() sets: closing a store
    never waits for the next round."""
    monkeypatch.setattr(Checkpointer, "EVERY_S", 3600)
    rounds: list[int] = []
    checkpointer = Checkpointer(lambda: sqlite3.connect(":memory:"), WriteLock(str(tmp_path / "lock")))
    monkeypatch.setattr(checkpointer, "checkpoint", lambda conn: rounds.append(1))
    checkpointer.committed()
    closing = threading.Thread(target=checkpointer.close)
    closing.start()
    closing.join(30)
    assert not closing.is_alive() and rounds == [1]  # the last round ran, at once


def test_a_truncation_waits_for_readers_of_an_older_snapshot(tmp_path):
    """After an erasure the log is copied and truncated to zero bytes; a reader still on an older
    snapshot (an export in progress) holds that back, and it happens at a round after the reader
    is done, whether or not anyone still waits for it."""
    path = tmp_path / "consent.db"
    store = SQLiteStore(str(path))
    wal = tmp_path / "consent.db-wal"
    try:
        store.create_tenant(tenant())
        append(store, "t1", "u1", draft("push"))
        export = store._connect()
        export.execute("BEGIN")
        export.execute("SELECT COUNT(*) FROM events").fetchone()  # a snapshot that reads the log
        append(store, "t1", "u2", draft("push"))

        assert store._checkpointer.truncate(timeout_s=0.5) is False
        assert wal.stat().st_size > 0
        export.execute("COMMIT")
        export.close()
        deadline = time.monotonic() + 30  # a later round, RETRY_TRUNCATE_S on: a bound for a loaded machine
        while wal.stat().st_size > 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert wal.stat().st_size == 0
        assert store._checkpointer.truncate(timeout_s=30) is True
        assert store.get_subject("t1", "u2").seq == 1
    finally:
        store.close()


def test_the_webhook_worker_s_bookkeeping_is_answered_at_its_commit_without_waiting_for_an_fsync(store,
                                                                                                 monkeypatch):
    """durable=False (the worker's lease, messages and outcomes, which a crash may lose and the
    worker derives or sends again) is answered once committed; other writes still wait."""
    release = threading.Event()
    sync = store._writer._sync
    monkeypatch.setattr(store._writer, "_sync", lambda: (release.wait(60), sync())[1])
    appended = threading.Thread(target=append, args=(store, "t1", "u1", draft("push")))
    appended.start()
    try:
        now = datetime.now(timezone.utc)
        assert store.acquire_lease("webhook-delivery", "w1", now, now + timedelta(seconds=10))
        assert appended.is_alive()  # its fsync is held back: it cannot have been answered
    finally:
        release.set()
        appended.join(60)
    assert not appended.is_alive()
    assert not store.acquire_lease("webhook-delivery", "w2", now, now + timedelta(seconds=10))
