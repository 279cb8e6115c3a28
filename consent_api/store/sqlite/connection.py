"""One SQLite file's connections and transactions, under the SQLiteStore.

Reads use one connection per thread. Writes off the hot path (catalog, credentials, rebuilds)
take the write lock on the calling thread (``_write``). Appends and idempotency records go
through the group commit (group_commit.py): one writer thread per process, whose COMMIT runs
with synchronous=NORMAL (it writes the log without syncing it) and whose durability is an
fdatasync of the log after the COMMIT and before any caller is answered (``_sync_wal``), what
synchronous=FULL would have done inside the lock. Every other connection runs with
synchronous=FULL. ``:memory:`` has one connection, shared under a lock, and no writer thread:
its writes run on the calling thread through the same batch code (batch.py).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from consent_api.errors import Unavailable
from consent_api.store.sqlite import batch
from consent_api.store.sqlite.group_commit import Checkpointer, GroupCommit, WriteLock, in_forked_child

PAGE_SIZE = 8192
# Reads through a memory map of the file (SQLite's maximum, 2 GiB) instead of a read() and a
# copy per page: a subject lookup took ~11 us instead of ~22 us, and the export's walk in time
# order 186k rows/s instead of 71k. The pages are the OS's page cache, shared by all
# connections: they show in a process's RSS as file-backed pages (RssFile), not as memory
# the process allocated (RssAnon, which an export keeps flat).
MMAP_BYTES = 2147418112
# Per-process caches (the catalog, API keys) serve while a counter in table ``versions`` is
# unchanged; every change to what they hold bumps it in the same transaction. This process sees
# its own changes at once; a catalog change made by another process (another worker, the CLI)
# shows within VERSION_CHECK_S, the longest a counter read is reused, which keeps the hot path
# at two queries (credentials counter, subject) instead of four. The credentials counter is
# read on every key lookup, so a revocation is never served from the memo.
VERSION_CHECK_S = 0.1
# How long an erasure waits for the log to be truncated (Checkpointer.truncate) before it is
# answered anyway: longer only while a reader of an older snapshot (an export) holds the log.
ERASURE_LOG_WAIT_S = 5.0


def connect(path: str, *, timeout_s: float = 30.0, synchronous: str = "FULL") -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), usable from any thread."""
    conn = sqlite3.connect(path, timeout=timeout_s, isolation_level=None, check_same_thread=False)
    # New files only (an existing file keeps its page size): with 4 KiB pages an event row
    # (~1.1 KB of JSON) of the version 1 events table (WITHOUT ROWID) spilled into an
    # overflow page of its own, 5.3 KB per event instead of 1.8 KB
    # (bench/measure_storage.py, docs/scaling.md).
    conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
    if path != ":memory:":
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute(f"PRAGMA busy_timeout={int(timeout_s * 1000)}")
    # Deleted rows are overwritten with zeros, not left in free space: an erased subject's id
    # must not stay readable in the file (the log is truncated after an erasure, ledger.py).
    conn.execute("PRAGMA secure_delete=ON")
    return conn


def translate(exc: BaseException) -> BaseException:
    """Driver errors become the port's; anything else (a plan's Invalid) passes unchanged."""
    if isinstance(exc, sqlite3.OperationalError):
        error = Unavailable(f"SQLite store: {exc}")
        error.__cause__ = exc
        return error
    return exc


class Database:
    """Connections, transactions, the group commit and the cache counters of one file."""

    def __init__(self, path: str, busy_timeout_s: float):
        self.path = path
        self._memory = path == ":memory:"
        self._timeout = busy_timeout_s
        self._local = threading.local()
        self._lock = threading.RLock()  # serialises everything on a shared :memory: connection
        self._shared: sqlite3.Connection | None = None
        self._versions: dict[str, tuple[float, int]] = {}  # name -> (reuse until, counter)
        self._wal_fd: int | None = None
        self._write_lock: WriteLock | None = None
        self._writer: GroupCommit | None = None
        self._checkpointer: Checkpointer | None = None
        if not self._memory:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._write_lock = WriteLock(path + "-writelock")
            self._writer = GroupCommit(self._writer_connection, batch.apply, translate, self._write_lock,
                                       self._sync_wal)
            self._checkpointer = Checkpointer(self._connect, self._write_lock)
            in_forked_child(self._forget_connections)  # a connection must never cross a fork (SQLite's rule)

    def _forget_connections(self) -> None:
        self._local = threading.local()
        self._wal_fd = None
        assert self._write_lock is not None
        self._checkpointer = Checkpointer(self._connect, self._write_lock)  # its thread stayed in the parent

    def _connect(self, synchronous: str = "FULL") -> sqlite3.Connection:
        return connect(self.path, timeout_s=self._timeout, synchronous=synchronous)

    def _writer_connection(self) -> sqlite3.Connection:
        """The group commit's: COMMIT writes the log without syncing it (_sync_wal does) and
        never checkpoints (the Checkpointer does, outside the write lock)."""
        conn = self._connect(synchronous="NORMAL")
        conn.execute("PRAGMA wal_autocheckpoint=0")
        return conn

    def _sync_wal(self) -> None:
        """The group commit's durability: flush the write-ahead log, after the COMMIT of a batch
        on its synchronous=NORMAL connection (frames written, not synced) and before any of the
        batch is answered; what SQLite's synchronous=FULL would have done inside the lock.
        Checkpoints still sync the log before copying it and the database after."""
        wal = self.path + "-wal"
        fd = self._wal_fd
        if fd is None or os.fstat(fd).st_ino != os.stat(wal).st_ino:
            if fd is not None:
                os.close(fd)
            fd = self._wal_fd = os.open(wal, os.O_RDONLY)
        os.fdatasync(fd)  # as SQLite syncs its WAL: the data and the size, not the mtime
        assert self._checkpointer is not None
        self._checkpointer.committed()

    def _conn(self) -> sqlite3.Connection:
        if self._memory:
            if self._shared is None:
                self._shared = self._connect()
            return self._shared
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    def _read(self) -> Reading:
        return Reading(self)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction on the calling thread, for writes off the hot path. Never append
        or _transact inside it: the writer thread would wait for this lock while this thread
        waits for the writer."""
        with self._write_lock or self._lock:
            conn = self._conn()
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise Unavailable(f"SQLite store: {exc}") from exc
            self._local.bumped = []
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            else:
                conn.execute("COMMIT")
                for name in self._local.bumped:  # after the commit, or a reader could re-memo the old counter
                    self._versions.pop(name, None)

    def _forget_log(self) -> None:
        """After rows holding an erased subject's id were rewritten or deleted: have the
        write-ahead log, which still holds them as they were, copied and truncated (waiting at
        most ERASURE_LOG_WAIT_S; later checkpoints finish it otherwise)."""
        if self._checkpointer is not None:
            self._checkpointer.truncate(ERASURE_LOG_WAIT_S)

    def _transact(self, fn: Callable[[sqlite3.Connection], Any], durable: bool = True) -> Any:
        """fn(conn) inside a write transaction; on a file, through the group commit (durable:
        answered after the fsync that covers it, else right after its COMMIT)."""
        if self._writer is None:
            with self._write() as conn:
                return fn(conn)
        return self._writer.run(batch.Write(fn), durable)

    def _version(self, conn: sqlite3.Connection, name: str, fresh: bool = False) -> int:
        """The counter of a cached value, read at most every VERSION_CHECK_S unless fresh."""
        now = time.monotonic()
        memo = self._versions.get(name)
        if memo is not None and memo[0] > now and not fresh:
            return memo[1]
        row = conn.execute("SELECT n FROM versions WHERE name = ?", (name,)).fetchone()
        version = row[0] if row else 0
        self._versions[name] = (now + VERSION_CHECK_S, version)
        return version

    def _bump(self, conn: sqlite3.Connection, name: str) -> None:
        """Inside a _write(): mark what this transaction changes for every process's caches."""
        conn.execute("INSERT INTO versions (name, n) VALUES (?, 1) "
                     "ON CONFLICT (name) DO UPDATE SET n = n + 1", (name,))
        self._local.bumped.append(name)

    def close(self) -> None:
        if self._writer is not None and self._checkpointer is not None and self._write_lock is not None:
            self._writer.close()
            self._checkpointer.close()
            self._write_lock.close()
            if self._wal_fd is not None:
                os.close(self._wal_fd)
                self._wal_fd = None
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
        if self._shared is not None:
            self._shared.close()
            self._shared = None


class Reading:
    """``with db._read() as conn``: the calling thread's connection (the shared one, locked,
    for :memory:), driver errors translated. A class, not @contextmanager: it runs several
    times a request and this is ~4x cheaper."""

    __slots__ = ("db",)

    def __init__(self, db: Database):
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        db = self.db
        if not db._memory:
            return db._conn()
        db._lock.acquire()
        try:
            return db._conn()
        except BaseException:
            db._lock.release()
            raise

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self.db._memory:
            self.db._lock.release()
        if exc_type is not None and issubclass(exc_type, sqlite3.OperationalError):
            raise Unavailable(f"SQLite store: {exc}") from exc
