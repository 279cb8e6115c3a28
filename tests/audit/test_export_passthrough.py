"""SQLite passes the stored event docs through to the NDJSON export (rows.export_line) instead of
parsing and writing each event again: the bytes must be exactly what the canonical encoder
writes for the event, on a ledger with erased subjects, rights requests and non-ASCII text, and
on a file upgraded from the layout before (docs in field order, no subject_id on the row)."""

from __future__ import annotations

import json
import sqlite3

from consent_api.domain.model import EVENT_FIELDS
from consent_api.domain.requests import REQUEST_FIELDS
from consent_api.store.port import ExportFilter
from consent_api.store.sqlite import SQLiteStore
from consent_api.store.sqlite.schema import MIGRATIONS
from tests.audit.ledger import lines
from tests.builders import decision
from tests.support.apps import ON_A_SQLITE_FILE

pytestmark = ON_A_SQLITE_FILE
PASSTHROUGH_VERSION = next(m.version for m in MIGRATIONS.values() if "carry their subject's id" in m.message)


def reference(event: dict) -> bytes:
    """The export line by its definition (DESIGN.md §8): keys sorted, compact, raw UTF-8."""
    return json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n"


def mixed(tenant) -> None:
    """Besides seed_ledger's: a rights request opened and answered, text beyond ASCII, a subject
    erased after a request, and one that returns after its erasure under a new chain."""
    tenant.record("wang@example.cn", decision("personalized_push", True), locale="zh-CN", policy_version="v2",
                  source={"channel": "ios", "collection_point": "设置 › 隐私", "sdk_version": "1.0 \"β\""},
                  expect=201)
    opened = tenant.post("/v1/subjects/frank/requests", {"type": "copy", "details": "请发给我 \\ 一份"},
                         expect=201).json
    tenant.patch(f"/v1/requests/{opened['id']}", {"status": "completed", "note": "sent"}, expect=200)
    tenant.decide("frank", policy="v2", location=True)
    tenant.erase("frank")
    tenant.decide("frank", policy="v2", location=False)


def test_the_export_is_the_canonical_encoding_of_each_event(file_ledger):
    mixed(file_ledger)
    store = file_ledger.client.application.extensions["consent_api.deps"].store
    events = list(store.export_events(file_ledger.id, ExportFilter()))
    exported = file_ledger.export()

    assert exported == b"".join(reference(e) for e in events)
    assert exported == b"".join(line for batch in store.export_lines(file_ledger.id, ExportFilter())
                                for line in batch)
    by_action = {e["action"] for e in events}
    assert {"erase", "request_opened", "request_closed", "prompt", "withdraw"} <= by_action
    returned = [e for e in lines(exported) if e["subject_id"] == "frank"]
    assert [(e["seq"], e["action"]) for e in returned] == [(1, "deny")]  # the new chain only
    erased = {e["subject_ref"] for e in events if e["action"] == "erase"}
    assert {e["subject_id"] for e in events if e["subject_ref"] in erased} == {None}
    assert any(e["subject_id"] == "wang@example.cn" for e in events) and "设置 › 隐私".encode() in exported


def as_version_8(path: str) -> None:
    """Put a file back in the layout before version PASSTHROUGH_VERSION: docs with their keys in
    the order events are sealed, no subject_id column."""
    later = [v for v in MIGRATIONS if v > PASSTHROUGH_VERSION]
    assert not later, f"migrations after {PASSTHROUGH_VERSION} ({later}) must be undone here first"
    with sqlite3.connect(path) as conn:
        docs = conn.execute("SELECT id, doc FROM events").fetchall()
        order = [*EVENT_FIELDS, *REQUEST_FIELDS]
        unsorted = [(json.dumps({k: json.loads(doc)[k] for k in order if k in json.loads(doc)},
                                ensure_ascii=False, separators=(",", ":")), rowid) for rowid, doc in docs]
        conn.executemany("UPDATE events SET doc = ? WHERE id = ?", unsorted)
        conn.execute("ALTER TABLE events DROP COLUMN subject_id")
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(PASSTHROUGH_VERSION - 1),))


def test_an_upgraded_file_exports_the_same_bytes(file_ledger, tmp_path):
    mixed(file_ledger)
    before = file_ledger.export()
    store = file_ledger.client.application.extensions["consent_api.deps"].store
    path = store.path
    store.close()
    as_version_8(path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT doc FROM events LIMIT 1").fetchone()[0].startswith('{"event_id"')

    upgraded = SQLiteStore(path)
    try:
        assert any("carry their subject's id" in m for m in upgraded.migrate())
        after = b"".join(line for batch in upgraded.export_lines(file_ledger.id, ExportFilter()) for line in batch)
    finally:
        upgraded.close()

    assert after == before and len(lines(after)) > 13
