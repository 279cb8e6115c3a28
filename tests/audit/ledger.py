"""A small, varied ledger to export, and the NDJSON it comes back as."""

from __future__ import annotations

import json

from consent_api.domain.clock import FixedClock, parse_ts
from tests.support.api import Tenant

DAY = "2026-03-02T08:00:00Z"  # when seed_ledger starts writing; the tests' times refer to it


def lines(ndjson: bytes) -> list[dict]:
    return [json.loads(line) for line in ndjson.splitlines()]


def seed_ledger(tenant: Tenant, clock: FixedClock) -> Tenant:
    """Three purposes, two policies, interleaved subjects, a prompt, a withdrawal, an erasure,
    and several events in one request (same recorded_at): 13 events of 5 subjects."""
    clock.now = parse_ts(DAY)
    tenant.purpose("personalized_push", "marketing")
    tenant.purpose("location", "device_permission")
    tenant.purpose("strictly_necessary", "processing", essential=True)
    tenant.policy("v1", effective_at=None)
    tenant.decide("alice", policy="v1", personalized_push=True, location=True)
    clock.advance(minutes=5)
    tenant.decide("bob", policy="v1", personalized_push=False)
    tenant.prompt("carol", "location")
    clock.advance(minutes=5)
    tenant.decide("alice", policy="v1", personalized_push=False)
    tenant.decide("carol", policy="v1", location=True, strictly_necessary=True)
    clock.advance(hours=1)
    tenant.decide("dave", policy="v1", personalized_push=True)
    tenant.erase("dave")
    tenant.decide("bob", policy="v1", location=True)
    clock.advance(hours=1)
    tenant.policy("v2", material=True, effective_at=None)
    tenant.decide("alice", policy="v2", personalized_push=True)
    tenant.decide("eve", policy="v2", location=False, personalized_push=True)
    return tenant
