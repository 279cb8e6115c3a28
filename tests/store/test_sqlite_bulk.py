"""bench.bulk (rows / load): what benchmarks and migrations load reads back exactly
like appended data, verifies, and rebuilds to the same state."""

from datetime import datetime, timezone

import pytest

from bench import bulk
from consent_api.domain.ledger import seal, verify_chain
from consent_api.domain.model import SubjectRecord, Tenant
from consent_api.domain.projection import apply_events
from consent_api.services.rebuild import rebuild_state
from consent_api.store.sqlite import SQLiteStore

T = "ten_bulk"


def ledger(n: int, actions: list[tuple[str, str]]):
    record = SubjectRecord(subject_id=f"u{n}", subject_ref=f"sr_{n:032x}")
    drafts = [{"event_id": f"e{n}-{i}", "tenant_id": T, "purpose": purpose, "action": action,
               "recorded_at": f"2026-01-0{i + 1}T00:00:00.000000Z", "policy_version": "v1"}
              for i, (purpose, action) in enumerate(actions)]
    events = seal(drafts, record)
    return apply_events(record, events), events


def test_bulk_loaded_ledgers_read_back_like_appended_ones(tmp_path):
    store = SQLiteStore(str(tmp_path / "bulk.db"))
    store.create_tenant(Tenant(T, "Bulk", datetime(2026, 1, 1, tzinfo=timezone.utc)))
    ledgers = [ledger(n, [("push", "grant"), ("sms", "deny"), ("push", "withdraw" if n % 2 else "grant")])
               for n in range(50)]
    count = bulk.load(store.path, [bulk.rows(T, ledgers[:20]), bulk.rows(T, ledgers[20:])])
    assert count == 150

    record, events = ledgers[7]
    assert store.get_subject(T, "u7") == record
    stored = store.subject_events(T, record.subject_ref)
    assert verify_chain(stored) == (3, None)
    assert [e["hash"] for e in stored] == [e["hash"] for e in events]
    allowed = store.allowed_candidates(T, "push", None, 100)
    assert [r.subject_id for r in allowed] == sorted(f"u{n}" for n in range(50) if n % 2 == 0)
    report = rebuild_state(store, fix=False)
    assert (report.subjects, report.differences, report.broken_chains) == (50, [], [])
    assert report.count_differences == []  # the loader filled the per-day counters too
    assert store.daily_counts(T, None, "9999-12-31").rows


def test_bulk_load_needs_a_file():
    with pytest.raises(ValueError):
        bulk.load(":memory:", [])
