"""changes.position_at: the feed position from which a replay from a time starts, on both
stores, by bisection; and console_requests.urgency, which marks the queue."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from consent_api.domain.clock import FixedClock, parse_ts
from consent_api.domain.requests import RequestStatus, RightsRequest
from consent_api.security.signing_keys import KeyRing
from consent_api.services import catalog, changes, consents, tenants
from consent_api.services.consents import Decision, Submission
from consent_api.services.console_requests import urgency
from consent_api.services.deps import Deps
from consent_api.store.open import open_store

START = datetime(2026, 3, 1, 8, tzinfo=timezone.utc)


@pytest.fixture(params=["sqlite:///:memory:", "mongomock://position"], ids=["sqlite", "mongomock"])
def deps(request):
    store = open_store(request.param)
    clock = FixedClock(START.isoformat())
    yield Deps(store, clock, KeyRing(store, clock))
    store.close()


def test_the_position_before_the_first_event_at_or_after_a_time(deps):
    tenant, _ = tenants.create_tenant(deps, "Acme")
    catalog.put_purpose(deps, tenant.id, "push", {"kind": "processing", "title": {"en": "Push"}})
    catalog.publish_policy(deps, tenant.id, {"version": "2026-01", "effective_at": START - timedelta(days=1)})
    recorded = []
    for n in range(9):
        deps.clock.now = START + timedelta(minutes=10 * n)
        written = consents.record(deps, tenant.id, f"u{n}", Submission([Decision("push", True)], "2026-01",
                                                                       {"channel": "ios"}, "en"))
        recorded.append(written.events[0]["recorded_at"])
    for n, at in enumerate(recorded):
        position = changes.position_at(deps, tenant.id, parse_ts(at))
        events = deps.store.feed_page(tenant.id, position, 100).events
        assert [e["recorded_at"] for e in events] == recorded[n:]
        between = changes.position_at(deps, tenant.id, parse_ts(at) - timedelta(minutes=5))
        assert between == position
    assert changes.position_at(deps, tenant.id, START - timedelta(days=1)) == 0
    assert changes.position_at(deps, tenant.id, START + timedelta(days=1)) == deps.store.feed_head(tenant.id)


def test_urgency_marks_what_is_overdue_and_due_soon():
    due = datetime(2026, 3, 10, 16, tzinfo=timezone.utc)  # 24:00 of 10 March in Shanghai
    made = RightsRequest("req_1", "t", "u", "access", RequestStatus.OPEN, START, due, START)
    days = "calendar_days"
    assert urgency(made, due - timedelta(days=3), days) is None
    assert urgency(made, due - timedelta(days=2), days) == "due_soon"
    assert urgency(made, due, days) == "overdue"
    assert urgency(made.changed(status=RequestStatus.COMPLETED), due, days) is None
