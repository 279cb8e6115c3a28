"""services.audit without HTTP: the cheap count the progress bar uses agrees with the export."""

from __future__ import annotations

import pytest

from conftest import lines
from consent_api.domain.clock import parse_ts
from consent_api.services import audit


@pytest.mark.parametrize("query", [
    {}, {"purpose": "location"}, {"subject_id": "alice"}, {"subject_id": "nobody"},
    {"since": "2026-03-02T08:05:00Z", "until": "2026-03-02T09:10:00Z"},
])
def test_count_agrees_with_the_export(ledger, query):
    deps = ledger.client.application.extensions["consent_api.deps"]
    typed = {k: parse_ts(v) if k in ("since", "until") else v for k, v in query.items()}
    plan = audit.plan(deps, ledger.tenant_id, audit.ExportQuery(**typed))
    assert audit.count(deps, ledger.tenant_id, plan) == len(lines(ledger.export(**query)))


def test_nothing_is_read_before_the_first_chunk_is_asked_for(ledger):
    deps = ledger.client.application.extensions["consent_api.deps"]
    calls = []
    original = deps.store.export_events
    deps.store.export_events = lambda *a: calls.append(a) or original(*a)
    try:
        out = audit.export(deps, ledger.tenant_id, audit.ExportQuery())
        assert calls == []
        body = b"".join(out.chunks)
        assert len(calls) == 1
    finally:
        del deps.store.export_events
    assert body == ledger.export()
