"""POST /v1/checks and GET /v1/audiences/{purpose} agree with each subject's own state, for
every status, over a mixed population (DESIGN §8 "Lists, bulk, proof, audit")."""

from __future__ import annotations

import pytest

from tests.support.apps import ON_BOTH_STORES

pytestmark = ON_BOTH_STORES

GRANTED, DENIED, WITHDRAWN = "granted", "denied", "withdrawn"
EXPIRED, RECONSENT, NOT_ASKED = "expired", "reconsent_required", "not_asked"

# What each purpose can end up as; expiry needs validity_days.
TARGETS = {
    "short_lived": (GRANTED, DENIED, WITHDRAWN, EXPIRED, RECONSENT, NOT_ASKED),
    "push": (GRANTED, DENIED, WITHDRAWN, RECONSENT, NOT_ASKED),
    "location": (NOT_ASKED, GRANTED, RECONSENT, WITHDRAWN, DENIED),
}
SUBJECTS = [f"user-{i:02d}" for i in range(30)]


def target(subject_index: int, purpose: str) -> str:
    options = TARGETS[purpose]
    return options[(subject_index * 7 + len(purpose)) % len(options)]


@pytest.fixture
def population(tenant, clock):
    """30 subjects whose purposes end in every status, an erased subject, a prompted-only one."""
    tenant.purpose("short_lived", "cookie", validity_days=1)
    tenant.purpose("push", "marketing")
    tenant.purpose("location", "device_permission")
    tenant.purpose("necessary", "processing", essential=True)
    tenant.policy("v1", effective_at=None)

    def act(status: str, granted: bool, policy: str) -> None:
        """Every subject decides, on each purpose whose target is status."""
        for i, subject in enumerate(SUBJECTS):
            decisions = {p: granted for p in TARGETS if target(i, p) == status}
            if decisions:
                tenant.decide(subject, policy=policy, **decisions)

    act(EXPIRED, True, "v1")  # granted now, outlived by the clock below
    act(WITHDRAWN, True, "v1")
    tenant.decide("gone", policy="v1", push=True)
    tenant.erase("gone")
    clock.advance(days=2)
    act(RECONSENT, True, "v1")  # granted under v1, just before a material v2
    clock.advance(minutes=1)
    tenant.policy("v2", material=True, effective_at=None)
    clock.advance(minutes=1)
    act(GRANTED, True, "v2")
    act(DENIED, False, "v2")
    act(WITHDRAWN, False, "v2")  # a refusal after a grant is a withdrawal
    tenant.prompt("prompted-only", "push", "location")
    for i, subject in enumerate(SUBJECTS):  # every subject exists, even with nothing decided
        if all(target(i, p) == NOT_ASKED for p in TARGETS):
            tenant.prompt(subject, "short_lived")
    return SUBJECTS + ["prompted-only"]


def test_population_covers_every_status_and_checks_and_audiences_agree(tenant, population):
    states = {s: tenant.state(s)["purposes"] for s in population}
    for i, subject in enumerate(SUBJECTS):
        for purpose in TARGETS:
            assert states[subject][purpose]["status"] == target(i, purpose), (subject, purpose)
    seen = {(p, states[s][p]["status"]) for s in population for p in TARGETS}
    assert {status for _, status in seen} == {GRANTED, DENIED, WITHDRAWN, EXPIRED, RECONSENT, NOT_ASKED}
    assert all(states[s]["necessary"] == {**states[s]["necessary"], "status": GRANTED, "allowed": True}
               for s in population)

    unknown = ["never-seen", "gone"]
    for purpose in (*TARGETS, "necessary"):
        allowed = {s for s in population if states[s][purpose]["allowed"]}
        results = check(tenant, purpose, population + unknown)
        assert results == {"purpose": purpose,
                           "results": {s: s in allowed for s in population + unknown}}
        assert audience(tenant, purpose, limit=4) == sorted(allowed)
    assert sorted(audience(tenant, "necessary", limit=7)) == sorted(population)


def test_allowed_is_only_granted_or_essential(tenant, population):
    states = {s: tenant.state(s)["purposes"] for s in population}
    for subject, purposes in states.items():
        for key, state in purposes.items():
            assert state["allowed"] == (state["status"] == GRANTED), (subject, key, state)


def check(tenant, purpose: str, subject_ids: list[str], expect: int = 200) -> dict:
    return tenant.post("/v1/checks", {"purpose": purpose, "subject_ids": subject_ids}, expect=expect).json


def audience(tenant, purpose: str, limit: int) -> list[str]:
    """Walk every page; each page is ordered, at most limit long, and the walk ends on null."""
    items, cursor, pages = [], None, 0
    while True:
        query = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        page = tenant.get(f"/v1/audiences/{purpose}", query=query, expect=200).json
        assert len(page["items"]) <= limit and page["items"] == sorted(page["items"])
        items += page["items"]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert len(page["items"]) == limit
    assert len(items) == len(set(items)) and items == sorted(items)
    assert pages == max(1, -(-len(items) // limit))  # no empty trailing page
    return items


def test_an_audience_reaches_every_page_even_when_expired_grants_crowd_the_candidates(tenant, clock):
    tenant.purpose("newsletter", "marketing", validity_days=1)
    tenant.policy("v1", effective_at=None)
    for i in range(12):
        tenant.decide(f"old-{i:02d}", policy="v1", newsletter=True)
    clock.advance(days=2)
    for i in range(3):
        tenant.decide(f"new-{i:02d}", policy="v1", newsletter=True)
    assert audience(tenant, "newsletter", limit=2) == ["new-00", "new-01", "new-02"]
    assert check(tenant, "newsletter", ["old-00", "new-00"])["results"] == {"old-00": False, "new-00": True}


def test_bulk_check_limits_and_unknown_purpose(tenant):
    tenant.purpose("push", "marketing")
    too_many = [f"s{i}" for i in range(1001)]
    assert "subject_ids" in check(tenant, "push", too_many, expect=422)["errors"]
    assert "purpose" in check(tenant, "nope", ["a"], expect=422)["errors"]
    assert tenant.get("/v1/audiences/nope", expect=404).json["status"] == 404
    assert "limit" in tenant.get("/v1/audiences/push", query={"limit": 501}, expect=422).json["errors"]
