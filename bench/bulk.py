"""Bulk loading of a SQLite file, for benchmarks only: ``rows`` serialises sealed ledgers (it is
pure, so producers can run it in parallel processes), ``load`` writes the batches, the per-day
counters of GET /v1/stats included (added up across batches, as the write path adds them).

The rows are the store's own (consent_api.store.sqlite.rows); the input is trusted
(``rebuild-state --check`` audits it)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from consent_api.domain import daily
from consent_api.domain.model import SubjectRecord
from consent_api.store.sqlite import SQLiteStore, connect
from consent_api.store.sqlite import daily as daily_rows
from consent_api.store.sqlite.rows import GRANT, INSERT_EVENT, SAVE_SUBJECT, event_row, granted, subject_row

Rows = tuple[list[tuple], list[tuple], list[tuple], list[tuple]]  # events, subjects, grants, counters


def rows(tenant_id: str, ledgers: Iterable[tuple[SubjectRecord, list[dict[str, Any]]]],
         validity: Mapping[str, float | None] | None = None) -> Rows:
    """Rows of events, subjects, grants and per-day counters for already sealed ledgers of new
    subjects, each with its projected record; validity: the purposes' validity_days."""
    events, subjects, grants = [], [], []
    counts: daily.Tally = {}
    for record, evs in ledgers:
        subjects.append(subject_row(tenant_id, record))
        grants.extend((tenant_id, key, record.subject_id)
                      for key, on in granted(record, record.purposes).items() if on)
        events.extend(event_row(tenant_id, record.subject_id, e) for e in evs)
        daily.chain_tally(evs, validity or {}, counts)
    events.sort(key=lambda row: (row[3], row[2], row[4]))  # time order, as the export reads them
    return events, subjects, grants, daily_rows.rows_of(tenant_id, counts)


def load(path: str, batches: Iterable[Rows]) -> int:
    """Insert batches from rows() into the SQLite file at path (schema brought up to date first),
    each in one transaction with synchronous=OFF; nothing is durable until the final checkpoint
    under synchronous=FULL has returned. Returns the number of events."""
    if path == ":memory:":
        raise ValueError("a bulk load needs a database file")
    SQLiteStore(path).close()
    conn = connect(path)
    count = 0
    try:
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-262144")  # 256 MiB: index inserts stay in memory
        for events, subjects, grants, counters in batches:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(INSERT_EVENT, events)
                conn.executemany(SAVE_SUBJECT, subjects)
                conn.executemany(GRANT, grants)
                daily_rows.add(conn, counters)
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
