"""The per-day counters on SQLite: table daily_counts, one row per (tenant, day, purpose, policy
version) with a column per domain/daily.FIELDS. A batch adds its appends' counts with one upsert
per row in its own transaction (batch.py), so a counter never disagrees with the events committed."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

from consent_api.domain import daily
from consent_api.domain.daily import Tally
from consent_api.store.port import DailyCounts
from consent_api.store.sqlite.rows import loads

COLUMNS = [f"ch_{name}" if name in daily.CHANNELS else name for name in daily.FIELDS]
KEY = "tenant_id, day, purpose, policy_version"

TABLE = f"""
CREATE TABLE IF NOT EXISTS daily_counts (
    tenant_id TEXT NOT NULL, day TEXT NOT NULL, purpose TEXT NOT NULL, policy_version TEXT NOT NULL,
    {", ".join(f"{c} INTEGER NOT NULL DEFAULT 0" for c in COLUMNS)},
    PRIMARY KEY ({KEY})) WITHOUT ROWID
"""
UPSERT = (f"INSERT INTO daily_counts ({KEY}, {', '.join(COLUMNS)}) "
          f"VALUES (?, ?, ?, ?, {', '.join('?' * len(COLUMNS))}) "
          f"ON CONFLICT ({KEY}) DO UPDATE SET {', '.join(f'{c} = {c} + excluded.{c}' for c in COLUMNS)}")
SELECT = f"SELECT day, purpose, policy_version, {', '.join(COLUMNS)} FROM daily_counts WHERE tenant_id = ?"


def rows_of(tenant_id: str, counts: Tally) -> list[tuple]:
    return [(tenant_id, *key, *row) for key, row in counts.items() if any(row)]


def add(conn: sqlite3.Connection, rows: list[tuple]) -> None:
    """Add counter rows (rows_of) to the table, inside the caller's transaction."""
    if rows:
        conn.executemany(UPSERT, rows)


def read(conn: sqlite3.Connection, tenant_id: str, since: str | None, until: str,
         purpose: str | None) -> DailyCounts:
    one = " AND purpose = ?" if purpose is not None else ""
    also = (purpose,) if purpose is not None else ()
    opening: dict[tuple[str, str], int] = {}
    if since is not None:
        # What lies before the span, summed inside SQLite: one pass over the tenant's older rows.
        for p, version, n in conn.execute(
                "SELECT purpose, policy_version, SUM(allowed) FROM daily_counts WHERE tenant_id = ? "
                f"AND day < ?{one} GROUP BY purpose, policy_version", (tenant_id, since, *also)):
            opening[(p, version)] = int(n)
    rows = {(day, p, version): list(counts) for day, p, version, *counts in conn.execute(
        f"{SELECT} AND day >= ? AND day < ?{one}", (tenant_id, since or "", until, *also))}
    return DailyCounts(opening, rows)


def replace(conn: sqlite3.Connection, tenant_id: str, counts: Tally) -> None:
    conn.execute("DELETE FROM daily_counts WHERE tenant_id = ?", (tenant_id,))
    add(conn, rows_of(tenant_id, counts))


def _chains(conn: sqlite3.Connection, tenant_id: str) -> Iterator[list[dict[str, Any]]]:
    """Every chain of the tenant, events in seq order, read in one pass over events_chain."""
    chain: list[dict[str, Any]] = []
    ref = None
    for subject_ref, doc in conn.execute(
            "SELECT subject_ref, doc FROM events WHERE tenant_id = ? ORDER BY subject_ref, seq", (tenant_id,)):
        if subject_ref != ref and chain:
            yield chain
            chain = []
        ref = subject_ref
        chain.append(loads(doc))
    if chain:
        yield chain


def fill(conn: sqlite3.Connection) -> None:
    """Schema version 7: the table, counted from the ledger that is already there."""
    conn.execute(TABLE)
    tenants = [t for (t,) in conn.execute("SELECT id FROM tenants ORDER BY id")]
    for tenant_id in tenants:
        validity = {doc["key"]: doc.get("validity_days") for doc in (
            loads(raw) for (raw,) in conn.execute("SELECT doc FROM purposes WHERE tenant_id = ?", (tenant_id,)))}
        counts: Tally = {}
        for chain in _chains(conn, tenant_id):
            daily.chain_tally(chain, validity, counts)
        replace(conn, tenant_id, counts)
