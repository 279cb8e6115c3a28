"""The scheduler's round over rights requests, with a fixed clock: due_soon at 2 counted days
left and overdue once due_at has passed, each marked once as a ledger event, never for a closed
request, and never twice when two schedulers run at once."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from consent_api.domain.clock import FixedClock
from consent_api.domain.ledger import verify_chain
from consent_api.security.signing_keys import KeyRing
from consent_api.services import requests, tenants
from consent_api.services.deps import Deps
from consent_api.services.requests import Origin
from consent_api.store.sqlite import SQLiteStore

ORIGIN = Origin({"channel": "ios"}, {"type": "self", "id": None, "reason": None})


@pytest.fixture
def clock():
    return FixedClock("2026-09-30T02:00:00Z")  # Wednesday, before National Day: due 27 October


@pytest.fixture
def deps(clock):
    store = SQLiteStore(":memory:")
    yield Deps(store, clock, KeyRing(store, clock))
    store.close()


@pytest.fixture
def tenant_id(deps):
    return tenants.create_tenant(deps, "Shop")[0].id


def shanghai(text: str) -> datetime:
    return datetime.fromisoformat(text + "+08:00").astimezone(timezone.utc)


def notices(deps, tenant_id, subject="u1"):
    record = deps.store.get_subject(tenant_id, subject)
    return [(e["action"], e["status"], e["notice"]) for e in deps.store.subject_events(tenant_id, record.subject_ref)
            if e.get("notice")]


def test_due_soon_then_overdue_each_once(deps, tenant_id, clock):
    opened = requests.open_request(deps, tenant_id, "u1", "copy", None, ORIGIN)
    assert opened.due_at == shanghai("2026-10-28T00:00:00")

    clock.now = shanghai("2026-10-23T12:00:00")  # Friday: 23, 26, 27 left
    assert requests.tick(deps) == []
    clock.now = shanghai("2026-10-24T12:00:00")  # Saturday: 26, 27 left
    assert requests.tick(deps) == [(tenant_id, opened.id, "due_soon")]
    assert requests.tick(deps) == []
    clock.now = shanghai("2026-10-27T23:59:59")
    assert requests.tick(deps) == []
    clock.now = shanghai("2026-10-28T00:00:00")
    assert requests.tick(deps) == [(tenant_id, opened.id, "overdue")]
    clock.advance(days=3)
    assert requests.tick(deps) == []

    assert notices(deps, tenant_id) == [("request_updated", "open", "due_soon"), ("request_updated", "open", "overdue")]
    assert requests.get(deps, tenant_id, opened.id).notices == ("due_soon", "overdue")
    record = deps.store.get_subject(tenant_id, "u1")
    assert record.purposes == {}  # no consent changed
    assert verify_chain(deps.store.subject_events(tenant_id, record.subject_ref)) == (3, None)


def test_a_request_found_late_is_marked_overdue_only(deps, tenant_id, clock):
    opened = requests.open_request(deps, tenant_id, "u1", "access", None, ORIGIN)
    clock.now = shanghai("2026-11-02T09:00:00")
    assert requests.tick(deps) == [(tenant_id, opened.id, "overdue")]
    assert notices(deps, tenant_id) == [("request_updated", "open", "overdue")]


def test_answered_requests_get_no_notices_but_in_progress_ones_do(deps, tenant_id, clock):
    done = requests.open_request(deps, tenant_id, "u1", "copy", None, ORIGIN)
    working = requests.open_request(deps, tenant_id, "u2", "copy", None, ORIGIN)
    agent = Origin({"channel": "server"}, {"type": "agent", "id": "key_1", "reason": None})
    requests.answer(deps, tenant_id, done.id, "completed", None, None, agent)
    requests.answer(deps, tenant_id, working.id, "in_progress", None, None, agent)

    clock.now = shanghai("2026-10-29T09:00:00")
    assert requests.tick(deps) == [(tenant_id, working.id, "overdue")]
    assert notices(deps, tenant_id, "u2") == [("request_updated", "in_progress", "overdue")]


def test_two_schedulers_racing_mark_once(deps, tenant_id, clock):
    """The second one's compare-and-set fails on the version the first one bumped."""
    opened = requests.open_request(deps, tenant_id, "u1", "copy", None, ORIGIN)
    stale = requests.get(deps, tenant_id, opened.id)
    clock.now = shanghai("2026-10-28T01:00:00")
    assert requests.tick(deps) == [(tenant_id, opened.id, "overdue")]
    assert requests._mark(deps, stale, "overdue", clock()) is False
    assert len(notices(deps, tenant_id)) == 1


def test_calendar_day_deadlines_are_due_soon_by_calendar_days(deps, tenant_id, clock):
    requests.put_settings(deps, tenant_id, {"days": 10, "calendar": "calendar_days"})
    opened = requests.open_request(deps, tenant_id, "u1", "copy", None, ORIGIN)
    assert opened.due_at == shanghai("2026-10-11T00:00:00")
    clock.now = shanghai("2026-10-08T12:00:00")  # 8, 9, 10 left: National Day does not matter
    assert requests.tick(deps) == []
    clock.now = shanghai("2026-10-09T00:00:00")
    assert requests.tick(deps) == [(tenant_id, opened.id, "due_soon")]


def test_tick_looks_at_every_tenant(deps, tenant_id, clock):
    other = tenants.create_tenant(deps, "Other")[0].id
    mine = requests.open_request(deps, tenant_id, "u1", "copy", None, ORIGIN)
    theirs = requests.open_request(deps, other, "u1", "copy", None, ORIGIN)
    clock.now = shanghai("2026-11-30T00:00:00")
    assert sorted(requests.tick(deps)) == sorted([(tenant_id, mine.id, "overdue"), (other, theirs.id, "overdue")])
