"""The SQLiteStore's subjects and events: reads, the storage step of an append, the audit
export, and whole chains for migrations and rebuilds."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from consent_api.domain import daily
from consent_api.domain.appending import Reseal, Sealed, Stored
from consent_api.domain.ledger import ZERO_HASH
from consent_api.domain.model import Action, PurposeRecord, SubjectRecord
from consent_api.domain.projection import project
from consent_api.errors import Conflict
from consent_api.store import records
from consent_api.store.port import Answer, Chain, DailyCounts, ExportFilter
from consent_api.store.sqlite import batch
from consent_api.store.sqlite import daily as daily_rows
from consent_api.store.sqlite.connection import Database
from consent_api.store.sqlite.group_commit import Failed
from consent_api.store.sqlite.rows import (
    FORGET_EVENT_SUBJECT,
    INSERT_EVENT,
    SAVE_SUBJECT,
    SELECT_SUBJECTS,
    SUBJECT_COLUMNS,
    dumps,
    event_row,
    export_line,
    granted,
    loads,
    record_from,
    select_in,
    subject_row,
    sync_grants,
)

EXPORT_BATCH = 1000  # rows per fetch of an export, and per chunk of export_lines


class Ledger(Database):
    # --- subjects -------------------------------------------------------------------------------
    @staticmethod
    def _load(conn: sqlite3.Connection, tenant_id: str, subject_id: str) -> SubjectRecord | None:
        row = conn.execute(f"SELECT {SUBJECT_COLUMNS} FROM subjects WHERE tenant_id = ? AND subject_id = ?",
                           (tenant_id, subject_id)).fetchone()
        return record_from(row) if row else None

    def get_subject(self, tenant_id: str, subject_id: str) -> SubjectRecord | None:
        with self._read() as conn:
            return self._load(conn, tenant_id, subject_id)

    def get_subjects(self, tenant_id: str, subject_ids: Sequence[str]) -> dict[str, SubjectRecord]:
        with self._read() as conn:
            return {row[0]: record_from(row) for row in select_in(conn, SELECT_SUBJECTS, subject_ids, tenant_id)}

    def purpose_records(self, tenant_id: str, subject_ids: Sequence[str],
                        purpose: str) -> dict[str, PurposeRecord | None]:
        """json_extract hands over one purpose's object, so 1,000 subjects parse ~1/5 as much."""
        path = "$." + dumps(purpose)  # a quoted member name: purpose keys may hold "." and "-"
        sql = "SELECT subject_id, json_extract(purposes, ?) FROM subjects WHERE tenant_id = ? AND subject_id IN ({ids})"
        with self._read() as conn:
            return {subject_id: PurposeRecord(**loads(doc)) if doc is not None else None
                    for subject_id, doc in select_in(conn, sql, subject_ids, path, tenant_id)}

    def allowed_candidates(self, tenant_id: str, purpose: str, after: str | None,
                           limit: int) -> list[SubjectRecord]:
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {', '.join('s.' + c.strip() for c in SUBJECT_COLUMNS.split(','))} "
                "FROM grants g JOIN subjects s ON s.tenant_id = g.tenant_id AND s.subject_id = g.subject_id "
                "WHERE g.tenant_id = ? AND g.purpose = ? AND g.subject_id > ? "
                "ORDER BY g.subject_id LIMIT ?",
                (tenant_id, purpose, after or "", limit),
            ).fetchall()
        return [record_from(row) for row in rows]

    def list_subjects(self, tenant_id: str, after: str | None, limit: int) -> list[SubjectRecord]:
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {SUBJECT_COLUMNS} FROM subjects WHERE tenant_id = ? AND subject_id > ? "
                "ORDER BY subject_id LIMIT ?",
                (tenant_id, after or "", limit),
            ).fetchall()
        return [record_from(row) for row in rows]

    @staticmethod
    def _replace(conn: sqlite3.Connection, tenant_id: str, record: SubjectRecord) -> None:
        conn.execute(SAVE_SUBJECT, subject_row(tenant_id, record))
        conn.execute("DELETE FROM grants WHERE tenant_id = ? AND subject_id = ?", (tenant_id, record.subject_id))
        sync_grants(conn, tenant_id, record.subject_id, granted(record, record.purposes))

    def replace_record(self, tenant_id: str, record: SubjectRecord) -> None:
        with self._write() as conn:
            self._replace(conn, tenant_id, record)

    # --- appends: the storage step of domain/appending.py --------------------------------------
    def around_append(self) -> AbstractContextManager[None]:
        # the writer's next batch waits briefly for an append being planned (group_commit.GATHER_S)
        return self._writer.preparing() if self._writer is not None else nullcontext()

    def subject_head(self, tenant_id: str, subject_id: str) -> SubjectRecord | None:
        return self.get_subject(tenant_id, subject_id)

    def _validity(self, tenant_id: str, purposes: set[str]) -> daily.Validity:
        """validity_days of the tenant's purposes, these ones included (the store's cached catalog)."""
        raise NotImplementedError

    def write_sealed(self, tenant_id: str, subject_id: str, sealed: Sealed, reseal: Reseal, *,
                     erase: bool = False, answer: Answer | None = None) -> Stored:
        validity = self._validity(tenant_id, {e["purpose"] for e in sealed.events if e["purpose"] is not None})
        payload = batch.Append.of(tenant_id, subject_id, sealed, reseal, erase, validity, answer)
        if self._writer is not None:
            outcome = self._writer.run(payload)  # raises a Failed outcome's error
        else:
            with self._write() as conn:
                outcome = batch.apply_appends(conn, [payload])[0]
        if isinstance(outcome, Failed):
            raise outcome.error
        if erase and outcome.events:
            # The log still holds the erased rows as they were, until later writes overwrite
            # them: have it copied and truncated before the erasure is answered.
            self._forget_log()
        return outcome

    # --- per-day counters ------------------------------------------------------------------------
    def daily_counts(self, tenant_id: str, since: str | None, until: str,
                     purpose: str | None = None) -> DailyCounts:
        with self._read() as conn:
            return daily_rows.read(conn, tenant_id, since, until, purpose)

    def replace_daily_counts(self, tenant_id: str, counts: daily.Tally) -> None:
        with self._write() as conn:
            daily_rows.replace(conn, tenant_id, counts)

    # --- events -----------------------------------------------------------------------------------
    def subject_events(self, tenant_id: str, subject_ref: str, after_seq: int = 0,
                       limit: int | None = None) -> list[dict[str, Any]]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT doc FROM events WHERE tenant_id = ? AND subject_ref = ? AND seq > ? "
                "ORDER BY seq LIMIT ?",
                (tenant_id, subject_ref, after_seq, -1 if limit is None else limit),
            ).fetchall()
        return [loads(doc) for (doc,) in rows]

    @staticmethod
    def _export_where(tenant_id: str, flt: ExportFilter) -> tuple[str, list[Any]]:
        where, args = ["e.tenant_id = ?"], [tenant_id]  # type: tuple[list[str], list[Any]]
        for clause, value in (("e.recorded_at >= ?", flt.since), ("e.recorded_at < ?", flt.until),
                              ("e.purpose = ?", flt.purpose), ("e.subject_ref = ?", flt.subject_ref)):
            if value:
                where.append(clause)
                args.append(value)
        if flt.after:
            where.append("(e.recorded_at, e.seq, e.event_id) > (?, ?, ?)")
            args += [flt.after.recorded_at, flt.after.seq, flt.after.event_id]
        return " AND ".join(where), args

    def count_events(self, tenant_id: str, flt: ExportFilter) -> int | None:
        where, args = self._export_where(tenant_id, flt)
        with self._read() as conn:
            return int(conn.execute(f"SELECT COUNT(*) FROM events e WHERE {where}", args).fetchone()[0])

    def export_events(self, tenant_id: str, flt: ExportFilter) -> Iterator[dict[str, Any]]:
        for doc, subject_id in self._export_rows(tenant_id, flt):
            event = loads(doc)
            event["subject_id"] = subject_id
            yield event

    def export_lines(self, tenant_id: str, flt: ExportFilter) -> Iterator[list[bytes]]:
        """The stored docs passed through, subject_id put in: no parsing, no join (rows.export_line)."""
        line = export_line
        for rows in self._export_batches(tenant_id, flt):
            yield [line(doc, subject_id) for doc, subject_id in rows]

    def _export_rows(self, tenant_id: str, flt: ExportFilter) -> Iterator[tuple[bytes, str | None]]:
        for rows in self._export_batches(tenant_id, flt):
            yield from rows

    def _export_batches(self, tenant_id: str, flt: ExportFilter) -> Iterator[list[tuple[bytes, str | None]]]:
        """(doc as UTF-8 bytes, subject_id) in export order, EXPORT_BATCH rows at a time. Each
        row carries its subject_id (cleared at an erasure), so no row is joined to subjects."""
        where, args = self._export_where(tenant_id, flt)
        sql = (f"SELECT CAST(e.doc AS BLOB), e.subject_id FROM events e WHERE {where}"
               " ORDER BY e.recorded_at, e.seq, e.event_id")
        # A private connection, so a slow consumer holds no lock that writers need.
        conn = self._connect() if not self._memory else None
        try:
            with self._lock if self._memory else nullcontext():
                cursor = (conn or self._conn()).execute(sql, args)
                while True:
                    rows = cursor.fetchmany(EXPORT_BATCH)
                    if not rows:
                        break
                    yield rows
        finally:
            if conn is not None:
                conn.close()

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
            return int(conn.execute("SELECT COUNT(DISTINCT subject_ref) FROM events WHERE tenant_id = ?",
                                    (tenant_id,)).fetchone()[0])

    def finish_import(self) -> None:
        """Rewrite the events table in recorded order: import_chain copies chain after chain, so
        the rows, numbered in the order written, lie clustered by chain, and the export, which
        walks them in time order, would read one random page per event (as before version 4).
        The table and its indexes are made again from their own definitions, whatever columns
        and indexes later versions add."""
        with self._write() as conn:
            (table,) = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'events'").fetchone()
            indexes = [sql for (sql,) in conn.execute(
                "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' AND sql IS NOT NULL")]
            columns = ", ".join(name for _, name, *_ in conn.execute("PRAGMA table_info(events)") if name != "id")
            conn.execute(table.replace("events", "events_in_time_order", 1))
            conn.execute(f"INSERT INTO events_in_time_order ({columns}) SELECT {columns} FROM events "
                         "ORDER BY tenant_id, recorded_at, seq, event_id")
            conn.execute("DROP TABLE events")
            conn.execute("ALTER TABLE events_in_time_order RENAME TO events")
            for sql in indexes:
                conn.execute(sql)

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
            erased = bool(events) and events[-1].get("action") == Action.ERASE
            owner = None if erased else subject_id
            conn.executemany(INSERT_EVENT, [event_row(tenant_id, owner, e) for e in new])
            if erased:
                conn.execute(FORGET_EVENT_SUBJECT, (tenant_id, ref))
            if subject_id is None:
                return len(new)
            current = self._load(conn, tenant_id, subject_id)
            if current is not None and current.subject_ref != ref:
                raise Conflict(f"subject {subject_id} already has another chain here")
            rows = conn.execute("SELECT doc FROM events WHERE tenant_id = ? AND subject_ref = ? "
                                "ORDER BY seq", (tenant_id, ref)).fetchall()
            chain = [loads(doc) for (doc,) in rows]
            if chain[-1]["action"] != Action.ERASE:
                record = project(subject_id, ref, chain)
                if record != current:
                    self._replace(conn, tenant_id, record)
        return len(new)
