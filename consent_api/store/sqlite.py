"""SQLiteStore: the embedded default. Stdlib sqlite3, WAL, synchronous=FULL.

Writers take ``BEGIN IMMEDIATE`` (one writer at a time across threads and processes sharing
the file), read the subject's head, seal the new events after it, and insert events and the
updated record in the same transaction, so a subject's ``seq`` has no gaps and an
acknowledged write survives a crash or a power loss. On a file, appends and idempotency
records go through one writer thread per process (``group_commit``), so concurrent requests
share a transaction and its fsync. Reads use one connection per thread; the catalog and API
keys are cached per process behind version counters (see VERSION_CHECK_S).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from consent_api.domain.clock import format_ts, parse_ts
from consent_api.domain.ledger import ZERO_HASH, new_subject_ref, seal
from consent_api.domain.model import (
    Action,
    ApiKey,
    PolicyVersion,
    Purpose,
    PurposeRecord,
    SubjectRecord,
    SubjectTokenKey,
    Tenant,
    Vendor,
)
from consent_api.domain.projection import apply_events, project
from consent_api.errors import Conflict, Unavailable
from consent_api.store import records
from consent_api.store.group_commit import Checkpointer, Failed, GroupCommit, WriteLock
from consent_api.store.port import (
    IDEMPOTENCY_TTL,
    Appended,
    Chain,
    ExportFilter,
    IdempotencyRecord,
    Plan,
    Store,
)

SCHEMA_VERSION = 4
PAGE_SIZE = 8192

# Version 1, as first released; later versions are the steps in MIGRATIONS below.
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tenants (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS api_keys (
    tenant_id TEXT NOT NULL, id TEXT NOT NULL, key_hash TEXT NOT NULL UNIQUE, doc TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS subject_token_keys (
    kid TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS subject_token_keys_tenant ON subject_token_keys (tenant_id);
CREATE TABLE IF NOT EXISTS purposes (
    tenant_id TEXT NOT NULL, key TEXT NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (tenant_id, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS policies (
    tenant_id TEXT NOT NULL, version TEXT NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (tenant_id, version)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS vendors (
    tenant_id TEXT NOT NULL, key TEXT NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (tenant_id, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS subjects (
    tenant_id TEXT NOT NULL, subject_id TEXT NOT NULL, subject_ref TEXT NOT NULL,
    seq INTEGER NOT NULL, head_hash TEXT NOT NULL, age_band TEXT, purposes TEXT NOT NULL,
    updated_at TEXT, PRIMARY KEY (tenant_id, subject_id)) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS subjects_ref ON subjects (tenant_id, subject_ref);
CREATE TABLE IF NOT EXISTS events (
    tenant_id TEXT NOT NULL, subject_ref TEXT NOT NULL, seq INTEGER NOT NULL,
    recorded_at TEXT NOT NULL, event_id TEXT NOT NULL, purpose TEXT, doc TEXT NOT NULL,
    PRIMARY KEY (tenant_id, subject_ref, seq)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_export ON events (tenant_id, recorded_at, seq, event_id);
CREATE TABLE IF NOT EXISTS grants (
    tenant_id TEXT NOT NULL, purpose TEXT NOT NULL, subject_id TEXT NOT NULL,
    PRIMARY KEY (tenant_id, purpose, subject_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS idempotency (
    tenant_id TEXT NOT NULL, scope TEXT NOT NULL, key TEXT NOT NULL, request_hash TEXT NOT NULL,
    status INTEGER, body TEXT, subject_ref TEXT, created_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, scope, key)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idempotency_subject ON idempotency (tenant_id, subject_ref);
CREATE TABLE IF NOT EXISTS signing_keys (kid TEXT PRIMARY KEY, created_at TEXT NOT NULL, doc TEXT NOT NULL);
"""

_DECISIONS = (Action.GRANT, Action.DENY, Action.WITHDRAW)
PURGE_BATCH = 100  # expired idempotency records removed per claim: bounded work on the write path


def _add_idempotency_expiry(conn: sqlite3.Connection) -> None:
    """v2: idempotency records expire (DESIGN.md §8 keeps them at least 24 h, not forever)."""
    conn.execute("ALTER TABLE idempotency ADD COLUMN expires_at TEXT")
    rows = conn.execute("SELECT tenant_id, scope, key, created_at FROM idempotency").fetchall()
    conn.executemany(
        "UPDATE idempotency SET expires_at = ? WHERE tenant_id = ? AND scope = ? AND key = ?",
        [(format_ts(parse_ts(created) + IDEMPOTENCY_TTL), t, sc, k) for t, sc, k, created in rows],
    )
    conn.execute("CREATE INDEX IF NOT EXISTS idempotency_expiry ON idempotency (expires_at)")


def _add_cache_versions(conn: sqlite3.Connection) -> None:
    """v3: version counters, so every worker knows when its cached catalog or keys went stale."""
    conn.execute("CREATE TABLE IF NOT EXISTS versions (name TEXT PRIMARY KEY, n INTEGER NOT NULL) "
                 "WITHOUT ROWID")


# The events table from version 4 on: rows in the order they were appended (rowid), so a walk in
# time order (the audit export) reads the file front to back instead of one random page per
# event; a subject's chain is found through events_chain. In the version 1 layout, clustered
# by (tenant_id, subject_ref, seq), the export of a 1M-subject file read 58k events/s; in this
# one 198k (SQL alone, same file, same machine).
EVENTS_IN_TIME_ORDER = """
CREATE TABLE events_v4 (
    id INTEGER PRIMARY KEY, tenant_id TEXT NOT NULL, subject_ref TEXT NOT NULL, seq INTEGER NOT NULL,
    recorded_at TEXT NOT NULL, event_id TEXT NOT NULL, purpose TEXT, doc TEXT NOT NULL);
INSERT INTO events_v4 (tenant_id, subject_ref, seq, recorded_at, event_id, purpose, doc)
    SELECT tenant_id, subject_ref, seq, recorded_at, event_id, purpose, doc FROM events
    ORDER BY tenant_id, recorded_at, seq, event_id;
DROP TABLE events;
ALTER TABLE events_v4 RENAME TO events;
CREATE UNIQUE INDEX events_chain ON events (tenant_id, subject_ref, seq);
CREATE INDEX events_export ON events (tenant_id, recorded_at, seq, event_id)
"""


def _run_script(conn: sqlite3.Connection, script: str) -> None:
    """Each statement of script inside the caller's transaction (executescript would commit it)."""
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


def _store_events_in_time_order(conn: sqlite3.Connection) -> None:
    """v4: events stored in the order they were recorded, so the audit export reads the file in order."""
    _run_script(conn, EVENTS_IN_TIME_ORDER)


# version -> the step that upgrades the previous version to it, run in one transaction
MIGRATIONS = {2: _add_idempotency_expiry, 3: _add_cache_versions, 4: _store_events_in_time_order}

# Per-process caches of the catalog and of API keys. Every change to what they hold bumps a
# counter (table ``versions``) in the same transaction; a cached value serves only while its
# counter is unchanged. This process sees its own changes at once; a change made by another
# process (another worker, the CLI) shows within VERSION_CHECK_S, the longest a counter read is
# reused, which keeps the hot path at one query (the subject) instead of four.
VERSION_CHECK_S = 0.1
# Reads through a memory map of the file (SQLite's maximum, 2 GiB) instead of a read() and a
# copy per page: a subject lookup took ~11 us instead of ~22 us, and the export's walk in time
# order 186k rows/s instead of 71k. The pages are the OS's page cache, shared by all
# connections: they show in a process's RSS as file-backed pages (RssFile), not as memory
# the process allocated (RssAnon, which an export keeps flat).
MMAP_BYTES = 2147418112
CREDENTIALS = "credentials"  # API keys, global: a key is found by its hash before its tenant is known
MAX_CACHED_KEYS = 10_000


def _catalog_version(tenant_id: str) -> str:
    return "catalog:" + tenant_id


_INSERT_EVENT = ("INSERT INTO events (tenant_id, subject_ref, seq, recorded_at, event_id, purpose, doc) "
                 "VALUES (?, ?, ?, ?, ?, ?, ?)")


@dataclass(frozen=True)
class _Write:
    """A write the group commit runs as it is, inside the batch's transaction."""

    fn: Callable[[sqlite3.Connection], Any]


@dataclass(frozen=True)
class _Append:
    """An append planned, sealed and serialised on a snapshot of the subject's row (``row``,
    None for a new subject), with the rows it will write."""

    tenant_id: str
    subject_id: str
    plan: Plan
    erase: bool
    row: tuple | None
    record: SubjectRecord
    events: list[dict[str, Any]]
    updated: SubjectRecord
    event_rows: list[tuple]
    subject_row: tuple
    grants: dict[str, bool]  # purpose -> granted now, for the purposes these events decided


class _Rows:
    """Rows of a batch's appends, written with one executemany per statement."""

    def __init__(self) -> None:
        self.events: list[tuple] = []
        self.subjects: dict[tuple[str, str], tuple] = {}  # the last record of each subject wins
        self.grants: dict[tuple[str, str, str], bool] = {}  # and the last grant state

    def add(self, a: _Append) -> None:
        self.events.extend(a.event_rows)
        self.subjects[(a.tenant_id, a.subject_id)] = a.subject_row
        for purpose, granted in a.grants.items():
            self.grants[(a.tenant_id, purpose, a.subject_id)] = granted

    def flush(self, conn: sqlite3.Connection) -> None:
        if self.events:
            conn.executemany(_INSERT_EVENT, self.events)
        if self.subjects:
            conn.executemany(f"INSERT OR REPLACE INTO subjects (tenant_id, {SQLiteStore._SUBJECT_COLUMNS}) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", list(self.subjects.values()))
        granted = [key for key, on in self.grants.items() if on]
        revoked = [key for key, on in self.grants.items() if not on]
        if granted:
            conn.executemany("INSERT OR IGNORE INTO grants (tenant_id, purpose, subject_id) "
                             "VALUES (?, ?, ?)", granted)
        if revoked:
            conn.executemany("DELETE FROM grants WHERE tenant_id = ? AND purpose = ? AND subject_id = ?",
                             revoked)
        self.events, self.subjects, self.grants = [], {}, {}


@dataclass(frozen=True)
class _Catalog:
    purposes: dict[str, Purpose]  # ordered by key
    policies: tuple[PolicyVersion, ...]


# The adapter's own documents go through orjson (~3x faster to read, ~20x to write than json);
# it writes the same compact UTF-8 JSON. The ledger's canonical form stays with the stdlib
# (consent_api.domain.ledger), because auditors re-run exactly that.
def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode("utf-8")


_loads = orjson.loads


class SQLiteStore(Store):
    def __init__(self, path: str = ":memory:", *, busy_timeout_s: float = 30.0):
        self.path = path
        self._memory = path == ":memory:"
        self._timeout = busy_timeout_s
        self._local = threading.local()
        self._lock = threading.RLock()  # serialises everything on a shared :memory: connection
        self._shared: sqlite3.Connection | None = None
        self._catalogs: dict[str, tuple[int, _Catalog]] = {}
        self._keys: dict[str, tuple[int, ApiKey]] = {}
        self._versions: dict[str, tuple[float, int]] = {}  # name -> (reuse until, counter)
        self._write_lock = None if self._memory else WriteLock(path + "-writelock")
        self._writer = None if self._memory else GroupCommit(
            self._writer_connection, self._apply, _translate, self._write_lock, self._sync_wal)
        self._checkpointer = Checkpointer(self._connect, self._write_lock)
        self._wal_fd: int | None = None
        if not self._memory:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            ref = weakref.ref(self)  # a connection must never cross a fork (SQLite's rule)
            os.register_at_fork(after_in_child=lambda: (me := ref()) is not None and me._forget_connections())
        self._init_schema()

    def _forget_connections(self) -> None:
        self._local = threading.local()
        self._wal_fd = None
        self._checkpointer = Checkpointer(self._connect, self._write_lock)  # its thread stayed in the parent

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
        self._checkpointer.committed()

    # --- connections ---------------------------------------------------------------------
    def _connect(self, synchronous: str = "FULL") -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=self._timeout, isolation_level=None, check_same_thread=False
        )
        # New files only (an existing file keeps its page size): with 4 KiB pages an event row
        # (~1.1 KB of JSON) of the version 1 events table (WITHOUT ROWID) spilled into an
        # overflow page of its own, 5.3 KB per event instead of 1.8 KB
        # (bench/measure_storage.py, docs/scaling.md).
        conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
        if not self._memory:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
        conn.execute(f"PRAGMA synchronous={synchronous}")
        conn.execute(f"PRAGMA busy_timeout={int(self._timeout * 1000)}")
        return conn

    def _conn(self) -> sqlite3.Connection:
        if self._memory:
            if self._shared is None:
                self._shared = self._connect()
            return self._shared
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    def _read(self) -> _Reading:
        return _Reading(self)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction on the calling thread, for writes off the hot path (catalog,
        credentials, rebuilds). Never append or _transact inside it: the writer thread would
        wait for this lock while this thread waits for the writer."""
        with self._lock if self._memory else self._write_lock:
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

    def _init_schema(self) -> None:
        """Create version 1 where nothing exists, then run every migration the file lacks."""
        self.upgraded: list[int] = []
        with self._write() as conn:
            _run_script(conn, SCHEMA)
            conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', '1')")
            found = int(conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0])
            if found > SCHEMA_VERSION:
                raise Unavailable(f"SQLite store {self.path}: schema version {found} is newer than "
                                  f"this release understands ({SCHEMA_VERSION})")
            for version in range(found + 1, SCHEMA_VERSION + 1):
                MIGRATIONS[version](conn)
                conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version),))
                self.upgraded.append(version)

    def migrate(self) -> list[str]:
        """The schema is brought up to date on opening; report what that did."""
        steps = [f"upgraded to schema version {v}: {MIGRATIONS[v].__doc__.split(':', 1)[1].strip()}"
                 for v in self.upgraded]
        return steps + [f"SQLite {self.path}: schema version {self.schema_version()}"]

    def schema_version(self) -> int:
        with self._read() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return int(row[0])

    def _version(self, conn: sqlite3.Connection, name: str, fresh: bool = False) -> int:
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
        if self._writer is not None:
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

    # --- tenants and credentials -----------------------------------------------------------
    def create_tenant(self, tenant: Tenant) -> None:
        try:
            with self._write() as conn:
                conn.execute("INSERT INTO tenants (id, doc) VALUES (?, ?)",
                             (tenant.id, _dumps(records.tenant_doc(tenant))))
        except sqlite3.IntegrityError as exc:
            raise Conflict(f"tenant {tenant.id} exists") from exc

    def get_tenant(self, tenant_id: str) -> Tenant | None:
        with self._read() as conn:
            row = conn.execute("SELECT doc FROM tenants WHERE id = ?", (tenant_id,)).fetchone()
        return records.tenant_from(_loads(row[0])) if row else None

    def iter_tenants(self) -> Iterator[Tenant]:
        with self._read() as conn:
            rows = conn.execute("SELECT doc FROM tenants ORDER BY id").fetchall()
        for (doc,) in rows:
            yield records.tenant_from(_loads(doc))

    def add_api_key(self, key: ApiKey) -> None:
        try:
            with self._write() as conn:
                conn.execute(
                    "INSERT INTO api_keys (tenant_id, id, key_hash, doc) VALUES (?, ?, ?, ?)",
                    (key.tenant_id, key.id, key.key_hash, _dumps(records.api_key_doc(key))),
                )
                self._bump(conn, CREDENTIALS)
        except sqlite3.IntegrityError as exc:
            raise Conflict("API key exists") from exc

    def find_api_key(self, key_hash: str) -> ApiKey | None:
        """Cached per process while the credentials version stands: a revocation anywhere
        shows on the next call."""
        with self._read() as conn:
            version = self._version(conn, CREDENTIALS)
            hit = self._keys.get(key_hash)
            if hit is not None and hit[0] == version:
                return hit[1]
            row = conn.execute("SELECT doc FROM api_keys WHERE key_hash = ?", (key_hash,)).fetchone()
        if row is None:
            return None  # not cached: random tokens must not grow the cache
        key = records.api_key_from(_loads(row[0]))
        if len(self._keys) >= MAX_CACHED_KEYS:
            self._keys.clear()
        self._keys[key_hash] = (version, key)
        return key

    def get_api_key(self, tenant_id: str, key_id: str) -> ApiKey | None:
        with self._read() as conn:
            row = conn.execute("SELECT doc FROM api_keys WHERE tenant_id = ? AND id = ?",
                               (tenant_id, key_id)).fetchone()
        return records.api_key_from(_loads(row[0])) if row else None

    def list_api_keys(self, tenant_id: str, after: str | None, limit: int) -> list[ApiKey]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT doc FROM api_keys WHERE tenant_id = ? AND id > ? ORDER BY id LIMIT ?",
                (tenant_id, after or "", limit),
            ).fetchall()
        return [records.api_key_from(_loads(doc)) for (doc,) in rows]

    def revoke_api_key(self, tenant_id: str, key_id: str, at: datetime) -> ApiKey | None:
        doc = self._revoke("api_keys", "id", tenant_id, key_id, at)
        return records.api_key_from(doc) if doc else None

    def _revoke(self, table: str, column: str, tenant_id: str, key: str, at: datetime) -> dict | None:
        """Stamp revoked_at on a credential's document; the first revocation time wins."""
        with self._write() as conn:
            row = conn.execute(f"SELECT doc FROM {table} WHERE tenant_id = ? AND {column} = ?",
                               (tenant_id, key)).fetchone()
            if row is None:
                return None
            doc = _loads(row[0])
            doc["revoked_at"] = doc.get("revoked_at") or format_ts(at)
            conn.execute(f"UPDATE {table} SET doc = ? WHERE tenant_id = ? AND {column} = ?",
                         (_dumps(doc), tenant_id, key))
            self._bump(conn, CREDENTIALS)
        return doc

    def publishable_origin_known(self, origin: str, tenant_id: str | None = None) -> bool:
        query = ("SELECT 1 FROM api_keys, json_each(api_keys.doc, '$.origins') o "
                 "WHERE o.value = ? AND json_extract(api_keys.doc, '$.revoked_at') IS NULL")
        args: tuple[str, ...] = (origin,)
        if tenant_id is not None:
            query, args = query + " AND api_keys.tenant_id = ?", (origin, tenant_id)
        with self._read() as conn:
            row = conn.execute(query + " LIMIT 1", args).fetchone()
        return row is not None

    def add_subject_token_key(self, key: SubjectTokenKey) -> None:
        try:
            with self._write() as conn:
                conn.execute("INSERT INTO subject_token_keys (kid, tenant_id, doc) VALUES (?, ?, ?)",
                             (key.kid, key.tenant_id, _dumps(records.subject_token_key_doc(key))))
        except sqlite3.IntegrityError as exc:
            raise Conflict(f"key {key.kid} exists") from exc

    def find_subject_token_key(self, kid: str) -> SubjectTokenKey | None:
        with self._read() as conn:
            row = conn.execute("SELECT doc FROM subject_token_keys WHERE kid = ?", (kid,)).fetchone()
        return records.subject_token_key_from(_loads(row[0])) if row else None

    def list_subject_token_keys(self, tenant_id: str) -> list[SubjectTokenKey]:
        with self._read() as conn:
            rows = conn.execute("SELECT doc FROM subject_token_keys WHERE tenant_id = ?",
                                (tenant_id,)).fetchall()
        keys = [records.subject_token_key_from(_loads(doc)) for (doc,) in rows]
        return sorted(keys, key=lambda k: (k.created_at, k.kid))

    def revoke_subject_token_key(self, tenant_id: str, kid: str, at: datetime) -> SubjectTokenKey | None:
        doc = self._revoke("subject_token_keys", "kid", tenant_id, kid, at)
        return records.subject_token_key_from(doc) if doc else None

    # --- catalog ---------------------------------------------------------------------------
    def _put_doc(self, table: str, column: str, tenant_id: str, key: str, doc: dict) -> bool:
        with self._write() as conn:
            exists = conn.execute(
                f"SELECT 1 FROM {table} WHERE tenant_id = ? AND {column} = ?", (tenant_id, key)
            ).fetchone()
            conn.execute(
                f"INSERT OR REPLACE INTO {table} (tenant_id, {column}, doc) VALUES (?, ?, ?)",
                (tenant_id, key, _dumps(doc)),
            )
            self._bump(conn, _catalog_version(tenant_id))
        return exists is None

    def _docs(self, table: str, column: str, tenant_id: str) -> list[dict]:
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT doc FROM {table} WHERE tenant_id = ? ORDER BY {column}", (tenant_id,)
            ).fetchall()
        return [_loads(doc) for (doc,) in rows]

    def put_purpose(self, tenant_id: str, purpose: Purpose) -> bool:
        return self._put_doc("purposes", "key", tenant_id, purpose.key, purpose.to_dict())

    def _catalog(self, tenant_id: str, fresh: bool = False) -> _Catalog:
        """Purposes and policies, cached per process while the tenant's catalog version stands."""
        name = _catalog_version(tenant_id)
        with self._read() as conn:
            version = self._version(conn, name, fresh)  # before the rows: a racing change only reloads
            hit = self._catalogs.get(tenant_id)
            if hit is not None and hit[0] == version:
                return hit[1]
            purposes = conn.execute("SELECT doc FROM purposes WHERE tenant_id = ? ORDER BY key",
                                    (tenant_id,)).fetchall()
            policies = conn.execute("SELECT doc FROM policies WHERE tenant_id = ? ORDER BY version",
                                    (tenant_id,)).fetchall()
        catalog = _Catalog(
            {p.key: p for p in (Purpose.from_dict(_loads(doc)) for (doc,) in purposes)},
            tuple(PolicyVersion.from_dict(_loads(doc)) for (doc,) in policies),
        )
        self._catalogs[tenant_id] = (version, catalog)
        return catalog

    def get_purpose(self, tenant_id: str, key: str) -> Purpose | None:
        purpose = self._catalog(tenant_id).purposes.get(key)
        if purpose is None:  # perhaps just created by another process: look again, uncached
            purpose = self._catalog(tenant_id, fresh=True).purposes.get(key)
        return purpose

    def list_purposes(self, tenant_id: str) -> list[Purpose]:
        return list(self._catalog(tenant_id).purposes.values())

    def add_policy(self, tenant_id: str, policy: PolicyVersion) -> None:
        try:
            with self._write() as conn:
                conn.execute("INSERT INTO policies (tenant_id, version, doc) VALUES (?, ?, ?)",
                             (tenant_id, policy.version, _dumps(policy.to_dict())))
                self._bump(conn, _catalog_version(tenant_id))
        except sqlite3.IntegrityError as exc:
            raise Conflict(f"policy version {policy.version} is already published") from exc

    def list_policies(self, tenant_id: str) -> list[PolicyVersion]:
        return list(self._catalog(tenant_id).policies)

    def put_vendor(self, tenant_id: str, vendor: Vendor) -> bool:
        return self._put_doc("vendors", "key", tenant_id, vendor.key, vendor.to_dict())

    def list_vendors(self, tenant_id: str) -> list[Vendor]:
        return [Vendor.from_dict(d) for d in self._docs("vendors", "key", tenant_id)]

    # --- subjects and the ledger -----------------------------------------------------------
    _SUBJECT_COLUMNS = "subject_id, subject_ref, seq, head_hash, age_band, purposes, updated_at"

    @staticmethod
    def _record(row: tuple) -> SubjectRecord:
        subject_id, subject_ref, seq, head_hash, age_band, purposes, updated_at = row
        return SubjectRecord(
            subject_id=subject_id, subject_ref=subject_ref, seq=seq, head_hash=head_hash,
            age_band=age_band, purposes=SubjectRecord.purposes_from_json(_loads(purposes)),
            updated_at=updated_at,
        )

    def _load(self, conn: sqlite3.Connection, tenant_id: str, subject_id: str) -> SubjectRecord | None:
        row = conn.execute(
            f"SELECT {self._SUBJECT_COLUMNS} FROM subjects WHERE tenant_id = ? AND subject_id = ?",
            (tenant_id, subject_id),
        ).fetchone()
        return self._record(row) if row else None

    def get_subject(self, tenant_id: str, subject_id: str) -> SubjectRecord | None:
        with self._read() as conn:
            return self._load(conn, tenant_id, subject_id)

    def get_subjects(self, tenant_id: str, subject_ids: Sequence[str]) -> dict[str, SubjectRecord]:
        found: dict[str, SubjectRecord] = {}
        ids = list(dict.fromkeys(subject_ids))
        with self._read() as conn:
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                marks = ",".join("?" * len(chunk))
                for row in conn.execute(
                    f"SELECT {self._SUBJECT_COLUMNS} FROM subjects "
                    f"WHERE tenant_id = ? AND subject_id IN ({marks})",
                    (tenant_id, *chunk),
                ):
                    record = self._record(row)
                    found[record.subject_id] = record
        return found

    def purpose_records(self, tenant_id: str, subject_ids: Sequence[str],
                        purpose: str) -> dict[str, PurposeRecord | None]:
        """json_extract hands over one purpose's object, so 1,000 subjects parse ~1/5 as much."""
        found: dict[str, PurposeRecord | None] = {}
        ids = list(dict.fromkeys(subject_ids))
        path = "$." + _dumps(purpose)  # a quoted member name: purpose keys may hold "." and "-"
        with self._read() as conn:
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                for subject_id, doc in conn.execute(
                    f"SELECT subject_id, json_extract(purposes, ?) FROM subjects "
                    f"WHERE tenant_id = ? AND subject_id IN ({','.join('?' * len(chunk))})",
                    (path, tenant_id, *chunk),
                ):
                    found[subject_id] = PurposeRecord(**_loads(doc)) if doc is not None else None
        return found

    def _save(self, conn: sqlite3.Connection, tenant_id: str, record: SubjectRecord) -> None:
        conn.execute(
            f"INSERT OR REPLACE INTO subjects (tenant_id, {self._SUBJECT_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (tenant_id, record.subject_id, record.subject_ref, record.seq, record.head_hash,
             record.age_band, _dumps(record.purposes_json()), record.updated_at),
        )

    def _sync_grants(self, conn: sqlite3.Connection, tenant_id: str, record: SubjectRecord,
                     purposes: set[str]) -> None:
        for key in purposes:
            rec = record.purposes.get(key)
            if rec is not None and rec.action == Action.GRANT:
                conn.execute("INSERT OR IGNORE INTO grants VALUES (?, ?, ?)",
                             (tenant_id, key, record.subject_id))
            else:
                conn.execute("DELETE FROM grants WHERE tenant_id = ? AND purpose = ? AND subject_id = ?",
                             (tenant_id, key, record.subject_id))

    def _transact(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        """fn(conn) inside a write transaction; on a file, through the group commit."""
        if self._writer is None:
            with self._write() as conn:
                return fn(conn)
        return self._writer.run(_Write(fn))

    def append(self, tenant_id: str, subject_id: str, plan: Plan, *, erase: bool = False) -> Appended:
        if self._writer is None:
            with self._write() as conn:
                prepared = self._prepare(tenant_id, subject_id, plan, erase,
                                         *self._snapshot(conn, tenant_id, subject_id))
                outcome = self._apply_appends(conn, [prepared])[0]
        else:
            # Plan, seal and serialise here, in the request's thread, on a snapshot of the
            # record; the writer thread applies the result as is when the subject's row is
            # still that snapshot at commit time, and plans again on the new record otherwise.
            self._writer.announce()
            try:
                with self._read() as conn:
                    snapshot = self._snapshot(conn, tenant_id, subject_id)
                prepared = self._prepare(tenant_id, subject_id, plan, erase, *snapshot)
            except BaseException:
                self._writer.withdraw()
                raise
            if not prepared.events:
                self._writer.withdraw()
                return Appended(prepared.record, [])
            outcome = self._writer.run(prepared, announced=True)
        if isinstance(outcome, Failed):
            raise outcome.error
        return outcome

    def _snapshot(self, conn: sqlite3.Connection, tenant_id: str,
                  subject_id: str) -> tuple[tuple | None, SubjectRecord]:
        row = conn.execute(
            f"SELECT {self._SUBJECT_COLUMNS} FROM subjects WHERE tenant_id = ? AND subject_id = ?",
            (tenant_id, subject_id),
        ).fetchone()
        record = self._record(row) if row else SubjectRecord(subject_id=subject_id,
                                                             subject_ref=new_subject_ref())
        return row, record

    def _prepare(self, tenant_id: str, subject_id: str, plan: Plan, erase: bool,
                 row: tuple | None, record: SubjectRecord) -> _Append:
        events = seal(plan(record), record)
        records.check_draft_tenant(tenant_id, events)
        updated = apply_events(record, events) if events else record
        touched = {e["purpose"] for e in events if e["action"] in _DECISIONS}
        return _Append(
            tenant_id, subject_id, plan, erase, row, record, events, updated,
            event_rows=[(tenant_id, e["subject_ref"], e["seq"], e["recorded_at"], e["event_id"],
                         e["purpose"], _dumps({k: v for k, v in e.items() if k != "subject_id"}))
                        for e in events],
            subject_row=(tenant_id, updated.subject_id, updated.subject_ref, updated.seq,
                         updated.head_hash, updated.age_band, _dumps(updated.purposes_json()),
                         updated.updated_at),
            grants={key: (rec := updated.purposes.get(key)) is not None and rec.action == Action.GRANT
                    for key in touched},
        )

    def _apply(self, conn: sqlite3.Connection, payloads: list[_Write | _Append]) -> list[Any]:
        """The group commit's batch, inside its transaction: one outcome per payload."""
        outcomes: list[Any] = [None] * len(payloads)
        appends = []
        for i, payload in enumerate(payloads):
            if isinstance(payload, _Append):
                appends.append(i)
                continue
            conn.execute("SAVEPOINT write")
            try:
                outcomes[i] = payload.fn(conn)
            except Exception as exc:
                if not conn.in_transaction:
                    raise  # SQLite gave up the whole transaction: the batch fails
                conn.execute("ROLLBACK TO write")
                outcomes[i] = Failed(exc)
            conn.execute("RELEASE write")
        for i, outcome in zip(appends, self._apply_appends(conn, [payloads[i] for i in appends])):
            outcomes[i] = outcome
        return outcomes

    def _apply_appends(self, conn: sqlite3.Connection, appends: list[_Append]) -> list[Any]:
        """Apply prepared appends in order with a few statements for all of them; an append
        whose subject changed since its snapshot (in an earlier transaction, or earlier in this
        batch) is planned again on the current record, and fails alone if its plan refuses."""
        rows: dict[tuple[str, str], tuple] = {}
        by_tenant: dict[str, list[str]] = {}
        for a in appends:
            by_tenant.setdefault(a.tenant_id, []).append(a.subject_id)
        for tenant_id, ids in by_tenant.items():
            ids = list(dict.fromkeys(ids))
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                for row in conn.execute(
                    f"SELECT {self._SUBJECT_COLUMNS} FROM subjects "
                    f"WHERE tenant_id = ? AND subject_id IN ({','.join('?' * len(chunk))})",
                    (tenant_id, *chunk),
                ):
                    rows[(tenant_id, row[0])] = row
        changed: dict[tuple[str, str], SubjectRecord | None] = {}  # by this batch; None: erased
        pending = _Rows()
        outcomes: list[Any] = []
        for a in appends:
            key = (a.tenant_id, a.subject_id)
            if key in changed or rows.get(key) != a.row:
                row = None if key in changed else rows.get(key)
                record = changed.get(key) if key in changed else (self._record(row) if row else None)
                try:
                    a = self._prepare(a.tenant_id, a.subject_id, a.plan, a.erase, row,
                                      record or SubjectRecord(subject_id=a.subject_id,
                                                              subject_ref=new_subject_ref()))
                except Exception as exc:
                    outcomes.append(Failed(exc))
                    continue
            if a.events and a.erase:
                pending.flush(conn)  # what came before the erasure lands first
                conn.executemany(_INSERT_EVENT, a.event_rows)
                conn.execute("DELETE FROM subjects WHERE tenant_id = ? AND subject_id = ?", key)
                conn.execute("DELETE FROM grants WHERE tenant_id = ? AND subject_id = ?", key)
                conn.execute("DELETE FROM idempotency WHERE tenant_id = ? AND subject_ref = ?",
                             (a.tenant_id, a.record.subject_ref))
                changed[key] = None
            elif a.events:
                pending.add(a)
                changed[key] = a.updated
            outcomes.append(Appended(a.updated if a.events else a.record, a.events))
        pending.flush(conn)
        return outcomes

    # Bulk loading, for benchmarks and migrations only: bulk_rows serialises sealed ledgers (it
    # is pure, so producers can run it in parallel processes), bulk_load writes the batches.
    BulkRows = tuple[list[tuple], list[tuple], list[tuple]]

    @classmethod
    def bulk_rows(cls, tenant_id: str,
                  ledgers: Iterable[tuple[SubjectRecord, list[dict[str, Any]]]]) -> BulkRows:
        """Rows of events, subjects and grants for already sealed ledgers of new subjects,
        each with its projected record."""
        events, subjects, grants = [], [], []
        for r, evs in ledgers:
            subjects.append((tenant_id, r.subject_id, r.subject_ref, r.seq, r.head_hash, r.age_band,
                             _dumps(r.purposes_json()), r.updated_at))
            grants.extend((tenant_id, key, r.subject_id)
                          for key, rec in r.purposes.items() if rec.action == Action.GRANT)
            events.extend((tenant_id, e["subject_ref"], e["seq"], e["recorded_at"], e["event_id"],
                           e["purpose"], _dumps({k: v for k, v in e.items() if k != "subject_id"}))
                          for e in evs)
        events.sort(key=lambda row: (row[3], row[2], row[4]))  # time order, as the export reads them
        return events, subjects, grants

    def bulk_load(self, batches: Iterable[BulkRows]) -> int:
        """Insert batches from bulk_rows, each in one transaction with synchronous=OFF; nothing
        is durable until the final checkpoint under synchronous=FULL has returned. The input
        is trusted (``rebuild-state --check`` audits it). Returns the number of events."""
        if self._memory:
            raise ValueError("bulk_load needs a database file")
        conn = self._connect()
        count = 0
        try:
            conn.execute("PRAGMA synchronous=OFF")
            conn.execute("PRAGMA cache_size=-262144")  # 256 MiB: index inserts stay in memory
            for events, subjects, grants in batches:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.executemany("INSERT INTO events (tenant_id, subject_ref, seq, recorded_at, "
                                     "event_id, purpose, doc) VALUES (?, ?, ?, ?, ?, ?, ?)", events)
                    conn.executemany(f"INSERT INTO subjects (tenant_id, {self._SUBJECT_COLUMNS}) "
                                     "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", subjects)
                    conn.executemany("INSERT INTO grants VALUES (?, ?, ?)", grants)
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
                count += len(events)
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
        return count

    def subject_events(self, tenant_id: str, subject_ref: str, after_seq: int = 0,
                       limit: int | None = None) -> list[dict[str, Any]]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT doc FROM events WHERE tenant_id = ? AND subject_ref = ? AND seq > ? "
                "ORDER BY seq LIMIT ?",
                (tenant_id, subject_ref, after_seq, -1 if limit is None else limit),
            ).fetchall()
        return [_loads(doc) for (doc,) in rows]

    @staticmethod
    def _export_where(tenant_id: str, flt: ExportFilter) -> tuple[str, list[Any]]:
        where, args = ["e.tenant_id = ?"], [tenant_id]
        if flt.since:
            where.append("e.recorded_at >= ?")
            args.append(flt.since)
        if flt.until:
            where.append("e.recorded_at < ?")
            args.append(flt.until)
        if flt.purpose:
            where.append("e.purpose = ?")
            args.append(flt.purpose)
        if flt.subject_ref:
            where.append("e.subject_ref = ?")
            args.append(flt.subject_ref)
        if flt.after:
            where.append("(e.recorded_at, e.seq, e.event_id) > (?, ?, ?)")
            args += [flt.after.recorded_at, flt.after.seq, flt.after.event_id]
        return " AND ".join(where), args

    def count_events(self, tenant_id: str, flt: ExportFilter) -> int | None:
        where, args = self._export_where(tenant_id, flt)
        with self._read() as conn:
            return conn.execute(f"SELECT COUNT(*) FROM events e WHERE {where}", args).fetchone()[0]

    def export_events(self, tenant_id: str, flt: ExportFilter) -> Iterator[dict[str, Any]]:
        where, args = self._export_where(tenant_id, flt)
        sql = (
            "SELECT e.doc, s.subject_id FROM events e LEFT JOIN subjects s "
            "ON s.tenant_id = e.tenant_id AND s.subject_ref = e.subject_ref "
            f"WHERE {where} ORDER BY e.recorded_at, e.seq, e.event_id"
        )
        # A private connection, so a slow consumer holds no lock that writers need.
        conn = self._connect() if not self._memory else None
        try:
            with self._lock if self._memory else _nullcontext():
                cursor = (conn or self._conn()).execute(sql, args)
                while True:
                    rows = cursor.fetchmany(1000)
                    if not rows:
                        break
                    for doc, subject_id in rows:
                        event = _loads(doc)
                        event["subject_id"] = subject_id
                        yield event
        finally:
            if conn is not None:
                conn.close()

    def allowed_candidates(self, tenant_id: str, purpose: str, after: str | None,
                           limit: int) -> list[SubjectRecord]:
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {', '.join('s.' + c.strip() for c in self._SUBJECT_COLUMNS.split(','))} "
                "FROM grants g JOIN subjects s ON s.tenant_id = g.tenant_id AND s.subject_id = g.subject_id "
                "WHERE g.tenant_id = ? AND g.purpose = ? AND g.subject_id > ? "
                "ORDER BY g.subject_id LIMIT ?",
                (tenant_id, purpose, after or "", limit),
            ).fetchall()
        return [self._record(row) for row in rows]

    def list_subjects(self, tenant_id: str, after: str | None, limit: int) -> list[SubjectRecord]:
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {self._SUBJECT_COLUMNS} FROM subjects WHERE tenant_id = ? AND subject_id > ? "
                "ORDER BY subject_id LIMIT ?",
                (tenant_id, after or "", limit),
            ).fetchall()
        return [self._record(row) for row in rows]

    def replace_record(self, tenant_id: str, record: SubjectRecord) -> None:
        with self._write() as conn:
            self._save(conn, tenant_id, record)
            conn.execute("DELETE FROM grants WHERE tenant_id = ? AND subject_id = ?",
                         (tenant_id, record.subject_id))
            self._sync_grants(conn, tenant_id, record, set(record.purposes))

    # --- whole chains ----------------------------------------------------------------------------
    def list_chains(self, tenant_id: str, after: str | None, limit: int) -> list[Chain]:
        # With one max() aggregate, SQLite takes the bare json_extract from the row holding it.
        with self._read() as conn:
            rows = conn.execute(
                "SELECT c.subject_ref, s.subject_id, c.n, c.seq, c.hash FROM ("
                "  SELECT subject_ref, COUNT(*) AS n, MAX(seq) AS seq, json_extract(doc, '$.hash') AS hash"
                "  FROM events WHERE tenant_id = ? AND subject_ref > ?"
                "  GROUP BY subject_ref ORDER BY subject_ref LIMIT ?) c "
                "LEFT JOIN subjects s ON s.tenant_id = ? AND s.subject_ref = c.subject_ref "
                "ORDER BY c.subject_ref",
                (tenant_id, after or "", limit, tenant_id),
            ).fetchall()
        return [Chain(*row) for row in rows]

    def count_chains(self, tenant_id: str) -> int:
        with self._read() as conn:
            return conn.execute("SELECT COUNT(DISTINCT subject_ref) FROM events WHERE tenant_id = ?",
                                (tenant_id,)).fetchone()[0]

    def import_chain(self, tenant_id: str, subject_id: str | None,
                     events: Sequence[dict[str, Any]]) -> int:
        ref = records.chain_ref(tenant_id, events)
        if ref is None:
            return 0
        with self._write() as conn:
            head = conn.execute(
                "SELECT seq, json_extract(doc, '$.hash') FROM events WHERE tenant_id = ? AND "
                "subject_ref = ? ORDER BY seq DESC LIMIT 1", (tenant_id, ref)).fetchone()
            new = records.new_in_chain(events, *(head or (0, ZERO_HASH)))
            conn.executemany(
                "INSERT INTO events (tenant_id, subject_ref, seq, recorded_at, event_id, purpose, doc) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(tenant_id, ref, e["seq"], e["recorded_at"], e["event_id"], e["purpose"],
                  _dumps({k: v for k, v in e.items() if k != "subject_id"})) for e in new],
            )
            if subject_id is None:
                return len(new)
            current = self._load(conn, tenant_id, subject_id)
            if current is not None and current.subject_ref != ref:
                raise Conflict(f"subject {subject_id} already has another chain here")
            rows = conn.execute("SELECT doc FROM events WHERE tenant_id = ? AND subject_ref = ? "
                                "ORDER BY seq", (tenant_id, ref)).fetchall()
            chain = [json.loads(doc) for (doc,) in rows]
            if chain[-1]["action"] != Action.ERASE:
                record = project(subject_id, ref, chain)
                if record != current:
                    self._save(conn, tenant_id, record)
                    conn.execute("DELETE FROM grants WHERE tenant_id = ? AND subject_id = ?",
                                 (tenant_id, subject_id))
                    self._sync_grants(conn, tenant_id, record, set(record.purposes))
        return len(new)

    # --- idempotency -------------------------------------------------------------------------
    # Claims, answers and releases ride the group commit too: a write with an Idempotency-Key
    # is three transactions, and under load each should share its fsync with others.
    def claim_idempotency_key(self, tenant_id: str, scope: str, key: str, request_hash: str,
                              now: datetime, ttl: timedelta = IDEMPOTENCY_TTL) -> IdempotencyRecord | None:
        stamp = format_ts(now)

        def claim(conn: sqlite3.Connection) -> IdempotencyRecord | None:
            # Every claim purges a few expired records: the table stays about 24 h of keys
            # without a background job, at the cost of one index probe per claim.
            conn.execute(
                "DELETE FROM idempotency WHERE (tenant_id, scope, key) IN (SELECT tenant_id, scope, key "
                "FROM idempotency WHERE expires_at <= ? LIMIT ?)", (stamp, PURGE_BATCH))
            row = conn.execute(
                "SELECT request_hash, status, body, created_at FROM idempotency "
                "WHERE tenant_id = ? AND scope = ? AND key = ? AND expires_at > ?",
                (tenant_id, scope, key, stamp),
            ).fetchone()
            if row is not None:
                return IdempotencyRecord(row[0], row[1], row[2], parse_ts(row[3]))
            conn.execute(
                "INSERT OR REPLACE INTO idempotency (tenant_id, scope, key, request_hash, created_at, "
                "expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                (tenant_id, scope, key, request_hash, stamp, format_ts(now + ttl)),
            )
            return None

        return self._transact(claim)

    def complete_idempotency_key(self, tenant_id: str, scope: str, key: str, status: int,
                                 body: str, subject_ref: str | None) -> None:
        def complete(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE idempotency SET status = ?, body = ?, subject_ref = ? "
                         "WHERE tenant_id = ? AND scope = ? AND key = ?",
                         (status, body, subject_ref, tenant_id, scope, key))

        self._transact(complete)

    def release_idempotency_key(self, tenant_id: str, scope: str, key: str) -> None:
        def release(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM idempotency WHERE tenant_id = ? AND scope = ? AND key = ?",
                         (tenant_id, scope, key))

        self._transact(release)

    # --- signing keys and health ---------------------------------------------------------------
    def list_signing_keys(self) -> list[dict[str, Any]]:
        with self._read() as conn:
            rows = conn.execute("SELECT doc FROM signing_keys ORDER BY created_at, kid").fetchall()
        return [_loads(doc) for (doc,) in rows]

    def add_signing_key(self, key: dict[str, Any]) -> None:
        try:
            with self._write() as conn:
                conn.execute("INSERT INTO signing_keys (kid, created_at, doc) VALUES (?, ?, ?)",
                             (key["kid"], key["created_at"], _dumps(key)))
        except sqlite3.IntegrityError as exc:
            raise Conflict(f"signing key {key['kid']} exists") from exc

    def update_signing_key(self, kid: str, changes: dict[str, Any]) -> None:
        with self._write() as conn:
            row = conn.execute("SELECT doc FROM signing_keys WHERE kid = ?", (kid,)).fetchone()
            if row is not None:
                doc = {**_loads(row[0]), **changes}
                conn.execute("UPDATE signing_keys SET doc = ? WHERE kid = ?", (_dumps(doc), kid))

    def ping(self) -> None:
        with self._read() as conn:
            conn.execute("SELECT 1").fetchone()


@contextmanager
def _nullcontext() -> Iterator[None]:
    yield


def _translate(exc: BaseException) -> BaseException:
    """Driver errors become the port's; anything else (a plan's Invalid) passes unchanged."""
    if isinstance(exc, sqlite3.OperationalError):
        error = Unavailable(f"SQLite store: {exc}")
        error.__cause__ = exc
        return error
    return exc


class _Reading:
    """``with store._read() as conn``: the calling thread's connection (the shared one, locked,
    for :memory:), driver errors translated. A class, not @contextmanager: it runs several
    times a request and this is ~4x cheaper."""

    __slots__ = ("store",)

    def __init__(self, store: SQLiteStore):
        self.store = store

    def __enter__(self) -> sqlite3.Connection:
        store = self.store
        if not store._memory:
            return store._conn()
        store._lock.acquire()
        try:
            return store._conn()
        except BaseException:
            store._lock.release()
            raise

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.store._memory:
            self.store._lock.release()
        if exc_type is not None and issubclass(exc_type, sqlite3.OperationalError):
            raise Unavailable(f"SQLite store: {exc}") from exc
