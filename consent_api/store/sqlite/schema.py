"""The SQLite schema: version 1 as first released, and the migrations that bring a file up to
SCHEMA_VERSION, each with the message `consent-api migrate` prints for it."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from consent_api.domain.clock import format_ts, parse_ts
from consent_api.errors import Unavailable
from consent_api.store.port import IDEMPOTENCY_TTL
from consent_api.store.sqlite import daily, rows

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

# Version 5: the page sets' sessions and the privacy center's one-time link codes (web/pages/).
# Both are found by the hash of a secret; tenant_id and subject_id / key_id end a person's or a
# key's sessions at once, expires_at lets each put purge a batch of expired rows.
PAGE_SESSIONS = """
CREATE TABLE IF NOT EXISTS page_sessions (
    token_hash TEXT PRIMARY KEY, tenant_id TEXT, subject_id TEXT, key_id TEXT,
    expires_at TEXT NOT NULL, doc TEXT NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS page_sessions_subject ON page_sessions (tenant_id, subject_id);
CREATE INDEX IF NOT EXISTS page_sessions_key ON page_sessions (tenant_id, key_id);
CREATE INDEX IF NOT EXISTS page_sessions_expiry ON page_sessions (expires_at);
CREATE TABLE IF NOT EXISTS link_codes (
    code_hash TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, expires_at TEXT NOT NULL,
    doc TEXT NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS link_codes_expiry ON link_codes (expires_at)
"""


# Version 6: rights requests, listed per tenant by (due_at, id) and per subject, and each
# tenant's settings (the request deadline).
RIGHTS_REQUESTS = """
CREATE TABLE IF NOT EXISTS requests (
    tenant_id TEXT NOT NULL, id TEXT NOT NULL, subject_id TEXT, status TEXT NOT NULL, type TEXT NOT NULL,
    due_at TEXT NOT NULL, version INTEGER NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS requests_due ON requests (tenant_id, due_at, id);
CREATE INDEX IF NOT EXISTS requests_subject ON requests (tenant_id, subject_id);
CREATE TABLE IF NOT EXISTS tenant_settings (tenant_id TEXT PRIMARY KEY, doc TEXT NOT NULL) WITHOUT ROWID
"""


def run_script(conn: sqlite3.Connection, script: str) -> None:
    """Each statement of script inside the caller's transaction (executescript would commit it)."""
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


def _add_idempotency_expiry(conn: sqlite3.Connection) -> None:
    conn.execute("ALTER TABLE idempotency ADD COLUMN expires_at TEXT")
    rows = conn.execute("SELECT tenant_id, scope, key, created_at FROM idempotency").fetchall()
    conn.executemany(
        "UPDATE idempotency SET expires_at = ? WHERE tenant_id = ? AND scope = ? AND key = ?",
        [(format_ts(parse_ts(created) + IDEMPOTENCY_TTL), t, sc, k) for t, sc, k, created in rows],
    )
    conn.execute("CREATE INDEX IF NOT EXISTS idempotency_expiry ON idempotency (expires_at)")


def _add_cache_versions(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS versions (name TEXT PRIMARY KEY, n INTEGER NOT NULL) "
                 "WITHOUT ROWID")


# Version 8: an idempotency record names the subject its request was about, so that erasing the
# subject deletes the records whose scope or answer holds its id even when they name no
# subject_ref (an answer that wrote nothing, a claim that never finished).
IDEMPOTENCY_SUBJECTS = """
ALTER TABLE idempotency ADD COLUMN subject_id TEXT;
CREATE INDEX idempotency_subject_id ON idempotency (tenant_id, subject_id) WHERE subject_id IS NOT NULL
"""

# Version 9: the change feed (events_feed: a tenant's events in rowid order, which is commit
# order) and the webhook tables (store/sqlite/delivery.py).
FEED_AND_WEBHOOKS = """
CREATE INDEX events_feed ON events (tenant_id);
CREATE TABLE webhooks (
    tenant_id TEXT NOT NULL, id TEXT NOT NULL, status TEXT NOT NULL, cursor INTEGER NOT NULL,
    replay_until INTEGER, doc TEXT NOT NULL, PRIMARY KEY (tenant_id, id)) WITHOUT ROWID;
CREATE INDEX webhooks_enabled ON webhooks (status, tenant_id, id);
CREATE TABLE webhook_messages (
    tenant_id TEXT NOT NULL, webhook_id TEXT NOT NULL, id TEXT NOT NULL, ord INTEGER NOT NULL,
    status TEXT NOT NULL, event_at TEXT NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (tenant_id, webhook_id, id)) WITHOUT ROWID;
CREATE INDEX webhook_messages_pending ON webhook_messages (tenant_id, webhook_id, ord, id) WHERE status = 'pending';
CREATE TABLE webhook_attempts (
    tenant_id TEXT NOT NULL, webhook_id TEXT NOT NULL, id TEXT NOT NULL, created_at TEXT NOT NULL,
    status TEXT NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (tenant_id, webhook_id, id)) WITHOUT ROWID;
CREATE INDEX webhook_attempts_log ON webhook_attempts (tenant_id, webhook_id, created_at, id);
CREATE INDEX webhook_attempts_time ON webhook_attempts (tenant_id, created_at, id);
CREATE TABLE webhook_counters (name TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE erasures (
    tenant_id TEXT NOT NULL, subject_ref TEXT NOT NULL, subject_id TEXT NOT NULL, at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, subject_ref)) WITHOUT ROWID;
CREATE INDEX erasures_at ON erasures (at);
CREATE TABLE leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, until TEXT NOT NULL) WITHOUT ROWID
"""

# Version 10: a webhook message names its subject_ref in a column of its own, so that erasing
# the subject finds (and redacts) its messages through an index instead of reading them all.
MESSAGE_SUBJECTS = """
ALTER TABLE webhook_messages ADD COLUMN subject_ref TEXT;
UPDATE webhook_messages SET subject_ref = json_extract(doc, '$.subject_ref');
CREATE INDEX webhook_messages_subject ON webhook_messages (tenant_id, subject_ref) WHERE subject_ref IS NOT NULL
"""


# Version 11: each event row carries its subject's id (cleared at the erasure), and its doc is the
# export line without subject_id (keys sorted), so the audit export passes the stored bytes
# through with no join to subjects and no parse (rows.export_line). At 1M subjects the join
# alone was one index lookup per event, half of them read() calls past the 2 GiB memory map.
def _events_carry_subject_ids(conn: sqlite3.Connection) -> None:
    conn.execute("ALTER TABLE events ADD COLUMN subject_id TEXT")
    last = 0
    while True:
        batch = conn.execute(
            "SELECT e.id, e.doc, s.subject_id FROM events e LEFT JOIN subjects s "
            "ON s.tenant_id = e.tenant_id AND s.subject_ref = e.subject_ref "
            "WHERE e.id > ? ORDER BY e.id LIMIT 10000", (last,)).fetchall()
        if not batch:
            return
        conn.executemany("UPDATE events SET doc = ?, subject_id = ? WHERE id = ?",
                         [(rows.event_doc(rows.loads(doc)), subject_id, rowid) for rowid, doc, subject_id in batch])
        last = batch[-1][0]


@dataclass(frozen=True)
class Migration:
    """The step that upgrades the previous version to ``version``, run in one transaction."""

    version: int
    message: str
    step: Callable[[sqlite3.Connection], None]


MIGRATIONS = {m.version: m for m in (
    Migration(2, "idempotency records expire (DESIGN.md §8 keeps them at least 24 h, not forever).",
              _add_idempotency_expiry),
    Migration(3, "version counters, so every worker knows when its cached catalog or keys went stale.",
              _add_cache_versions),
    Migration(4, "events stored in the order they were recorded, so the audit export reads the file in order.",
              lambda conn: run_script(conn, EVENTS_IN_TIME_ORDER)),
    Migration(5, "page sessions and one-time privacy-center links, for the server-rendered pages.",
              lambda conn: run_script(conn, PAGE_SESSIONS)),
    Migration(6, "rights requests with their deadlines, and tenant settings.",
              lambda conn: run_script(conn, RIGHTS_REQUESTS)),
    Migration(7, "per-day counters for GET /v1/stats, counted from the ledger already there.", daily.fill),
    Migration(8, "idempotency records name their subject, so an erasure deletes every one that holds its id.",
              lambda conn: run_script(conn, IDEMPOTENCY_SUBJECTS)),
    Migration(9, "the change feed (GET /v1/changes) and webhook endpoints, messages, delivery log and lease.",
              lambda conn: run_script(conn, FEED_AND_WEBHOOKS)),
    Migration(10, "webhook messages name their subject, so an erasure redacts them through an index.",
              lambda conn: run_script(conn, MESSAGE_SUBJECTS)),
    Migration(11, "events carry their subject's id and their export line, so the audit export reads one table "
                  "in order.",
              _events_carry_subject_ids),
)}
SCHEMA_VERSION = max(MIGRATIONS)


def upgrade(conn: sqlite3.Connection, path: str) -> list[int]:
    """Inside a write transaction: create version 1 where nothing exists, then run every
    migration the file lacks; the versions upgraded to."""
    run_script(conn, SCHEMA)
    conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', '1')")
    found = schema_version(conn)
    if found > SCHEMA_VERSION:
        raise Unavailable(f"SQLite store {path}: schema version {found} is newer than "
                          f"this release understands ({SCHEMA_VERSION})")
    upgraded = []
    for version in range(found + 1, SCHEMA_VERSION + 1):
        MIGRATIONS[version].step(conn)
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version),))
        upgraded.append(version)
    return upgraded


def upgrade_messages(upgraded: list[int]) -> list[str]:
    return [f"upgraded to schema version {v}: {MIGRATIONS[v].message}" for v in upgraded]


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0])
