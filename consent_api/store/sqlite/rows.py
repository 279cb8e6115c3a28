"""The ledger's rows, each written once: an event row, a subject row, a record from a subject
row, the grants a record implies, and a SELECT ... IN (...) over any number of subject ids."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import orjson

from consent_api.domain import ledger
from consent_api.domain.model import Action, SubjectRecord

SUBJECT_COLUMNS = "subject_id, subject_ref, seq, head_hash, age_band, purposes, updated_at"
INSERT_EVENT = ("INSERT INTO events (tenant_id, subject_ref, seq, recorded_at, event_id, purpose, doc, subject_id) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
# At an erasure: the subject's events keep their proof under subject_ref only.
FORGET_EVENT_SUBJECT = "UPDATE events SET subject_id = NULL WHERE tenant_id = ? AND subject_ref = ?"
SAVE_SUBJECT = f"INSERT OR REPLACE INTO subjects (tenant_id, {SUBJECT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
SELECT_SUBJECTS = f"SELECT {SUBJECT_COLUMNS} FROM subjects WHERE tenant_id = ? AND subject_id IN ({{ids}})"
GRANT = "INSERT OR IGNORE INTO grants (tenant_id, purpose, subject_id) VALUES (?, ?, ?)"
UNGRANT = "DELETE FROM grants WHERE tenant_id = ? AND purpose = ? AND subject_id = ?"
# An idempotency key's first answer, for replays.
ANSWER = ("UPDATE idempotency SET status = ?, body = ?, subject_ref = ? "
          "WHERE tenant_id = ? AND scope = ? AND key = ?")
# At an erasure: the idempotency records about the subject, by its subject_ref, then by its id.
FORGET_ANSWERS = ("DELETE FROM idempotency WHERE tenant_id = ? AND subject_ref = ?",
                  "DELETE FROM idempotency WHERE tenant_id = ? AND subject_id = ?")
IN_CHUNK = 500  # ids per IN (...): well below SQLite's limit on bound parameters


# The adapter's own documents go through orjson (~3x faster to read, ~20x to write than json);
# it writes the same compact UTF-8 JSON. The ledger's canonical form stays with the stdlib
# (consent_api.domain.ledger), because auditors re-run exactly that.
def dumps(value: Any) -> str:
    return orjson.dumps(value).decode("utf-8")


loads = orjson.loads


def event_doc(event: dict[str, Any]) -> str:
    """The doc column: the event's export line without subject_id and the newline (keys sorted,
    compact, raw UTF-8), so the export passes it through (``export_line``) instead of parsing and
    writing it again."""
    return ledger.export_line({k: v for k, v in event.items() if k != "subject_id"})[:-1].decode("utf-8")


def event_row(tenant_id: str, subject_id: str | None, event: dict[str, Any]) -> tuple:
    """A sealed event as the events table holds it. ``subject_id`` (None for an erased subject, and
    on the erasure's own event) sits beside the doc, never in it, and is cleared at the erasure."""
    subject_id = None if event.get("action") == Action.ERASE else subject_id
    return (tenant_id, event["subject_ref"], event["seq"], event["recorded_at"], event["event_id"],
            event["purpose"], event_doc(event), subject_id)


_SUBJECT_REF_KEY = b',"subject_ref":'


def export_line(doc: bytes, subject_id: str | None) -> bytes:
    """The export line of an event row: its doc with subject_id put where its sorted keys place
    it, right before subject_ref (the doc's last key but tenant_id, so its last occurrence: a
    nested object's keys come earlier, and no string holds an unescaped quote)."""
    at = doc.rfind(_SUBJECT_REF_KEY)
    if at < 0:  # not a doc this layout wrote: the slow way
        return ledger.export_line({**loads(doc), "subject_id": subject_id})
    return b"".join((doc[:at], b',"subject_id":', orjson.dumps(subject_id), doc[at:], b"\n"))


def subject_row(tenant_id: str, record: SubjectRecord) -> tuple:
    return (tenant_id, record.subject_id, record.subject_ref, record.seq, record.head_hash,
            record.age_band, dumps(record.purposes_json()), record.updated_at)


def record_from(row: Sequence[Any]) -> SubjectRecord:
    """A record from the SUBJECT_COLUMNS of a subjects row."""
    subject_id, subject_ref, seq, head_hash, age_band, purposes, updated_at = row
    return SubjectRecord(
        subject_id=subject_id, subject_ref=subject_ref, seq=seq, head_hash=head_hash,
        age_band=age_band, purposes=SubjectRecord.purposes_from_json(loads(purposes)),
        updated_at=updated_at,
    )


def granted(record: SubjectRecord, purposes: Iterable[str]) -> dict[str, bool]:
    """For each of these purposes, whether the record's last decision on it is a grant."""
    return {key: (rec := record.purposes.get(key)) is not None and rec.action == Action.GRANT
            for key in purposes}


def sync_grants(conn: sqlite3.Connection, tenant_id: str, subject_id: str, grants: dict[str, bool]) -> None:
    """Bring the grants table (what audiences read) in line with grants (purpose -> granted)."""
    conn.executemany(GRANT, [(tenant_id, key, subject_id) for key, on in grants.items() if on])
    conn.executemany(UNGRANT, [(tenant_id, key, subject_id) for key, on in grants.items() if not on])


def select_in(conn: sqlite3.Connection, sql: str, ids: Sequence[str], *before: Any) -> Iterator[Any]:
    """Rows of sql, whose ``{ids}`` stands for the id placeholders, for every id, IN_CHUNK at a time;
    ``before`` are the parameters ahead of the ids. Duplicate ids are asked for once."""
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), IN_CHUNK):
        chunk = unique[start:start + IN_CHUNK]
        yield from conn.execute(sql.replace("{ids}", ",".join("?" * len(chunk))), (*before, *chunk))
