"""Within a chain, recorded_at never goes back, so every export lists a chain in seq order."""

from __future__ import annotations

from consent_api.domain.ledger import seal, verify_chain
from consent_api.domain.model import SubjectRecord
from consent_api.store.port import ExportFilter
from consent_api.store.sqlite import SQLiteStore


def draft(recorded_at: str) -> dict:
    return {"event_id": f"e-{recorded_at}", "tenant_id": "t", "purpose": "p", "action": "grant",
            "recorded_at": recorded_at, "occurred_at": recorded_at}


def test_a_writer_that_read_the_clock_before_waiting_gets_the_heads_time():
    record = SubjectRecord("s", "sr_1", seq=3, head_hash="a" * 64, updated_at="2026-03-02T08:00:05.000000Z")
    events = seal([draft("2026-03-02T08:00:04.000000Z"), draft("2026-03-02T08:00:06.000000Z")], record)
    assert [e["recorded_at"] for e in events] == ["2026-03-02T08:00:05.000000Z", "2026-03-02T08:00:06.000000Z"]
    assert events[0]["occurred_at"] == "2026-03-02T08:00:04.000000Z"  # the evidence is kept as given


def test_interleaved_writers_still_export_each_chain_in_seq_order():
    store = SQLiteStore(":memory:")
    # Two requests for one subject took the clock at :01 and :02; the later one wrote first.
    store.append("t", "s", lambda rec: [draft("2026-03-02T08:00:02.000000Z")])
    store.append("t", "s", lambda rec: [draft("2026-03-02T08:00:01.000000Z")])
    store.append("t", "other", lambda rec: [draft("2026-03-02T08:00:01.500000Z")])
    exported = [e for e in store.export_events("t", ExportFilter()) if e["subject_id"] == "s"]
    assert [e["seq"] for e in exported] == [1, 2]
    assert verify_chain(exported) == (2, None)
