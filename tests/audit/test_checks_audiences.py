"""POST /v1/checks and GET /v1/audiences/{purpose} agree with each subject's own state, for
every status, over a mixed population (DESIGN §8 "Lists, bulk, proof, audit")."""

from __future__ import annotations

import pytest

from tests.audit.actions import ON_BOTH_STORES

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
def population(api):
    """30 subjects whose purposes end in every status, an erased subject, a prompted-only one."""
    api.purpose("short_lived", "cookie", validity_days=1)
    api.purpose("push", "marketing")
    api.purpose("location", "device_permission")
    api.purpose("necessary", "processing", essential=True)
    api.policy("v1")

    def act(status: str, granted: bool, policy: str) -> None:
        """Every subject decides, on each purpose whose target is status."""
        for i, subject in enumerate(SUBJECTS):
            decisions = {p: granted for p in TARGETS if target(i, p) == status}
            if decisions:
                api.decide(subject, policy=policy, **decisions)

    act(EXPIRED, True, "v1")  # granted now, outlived by the clock below
    act(WITHDRAWN, True, "v1")
    api.decide("gone", push=True)
    api.erase("gone")
    api.advance(days=2)
    act(RECONSENT, True, "v1")  # granted under v1, just before a material v2
    api.advance(minutes=1)
    api.policy("v2", material=True)
    api.advance(minutes=1)
    act(GRANTED, True, "v2")
    act(DENIED, False, "v2")
    act(WITHDRAWN, False, "v2")  # a refusal after a grant is a withdrawal
    api.prompt("prompted-only", "push", "location")
    for i, subject in enumerate(SUBJECTS):  # every subject exists, even with nothing decided
        if all(target(i, p) == NOT_ASKED for p in TARGETS):
            api.prompt(subject, "short_lived")
    return SUBJECTS + ["prompted-only"]


def test_population_covers_every_status_and_checks_and_audiences_agree(api, population):
    states = {s: api.state(s)["purposes"] for s in population}
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
        results = api.call("POST", "/v1/checks", {"purpose": purpose, "subject_ids": population + unknown})
        assert results == {"purpose": purpose,
                           "results": {s: s in allowed for s in population + unknown}}
        assert audience(api, purpose, limit=4) == sorted(allowed)
    assert sorted(audience(api, "necessary", limit=7)) == sorted(population)


def test_allowed_is_only_granted_or_essential(api, population):
    states = {s: api.state(s)["purposes"] for s in population}
    for subject, purposes in states.items():
        for key, state in purposes.items():
            assert state["allowed"] == (state["status"] == GRANTED), (subject, key, state)


def audience(api, purpose: str, limit: int) -> list[str]:
    """Walk every page; each page is ordered, at most limit long, and the walk ends on null."""
    items, cursor, pages = [], None, 0
    while True:
        query = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        page = api.call("GET", f"/v1/audiences/{purpose}", query=query)
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


def test_an_audience_reaches_every_page_even_when_expired_grants_crowd_the_candidates(api):
    api.purpose("newsletter", "marketing", validity_days=1)
    api.policy("v1")
    for i in range(12):
        api.decide(f"old-{i:02d}", newsletter=True)
    api.advance(days=2)
    for i in range(3):
        api.decide(f"new-{i:02d}", newsletter=True)
    assert audience(api, "newsletter", limit=2) == ["new-00", "new-01", "new-02"]
    results = api.call("POST", "/v1/checks", {"purpose": "newsletter",
                                              "subject_ids": ["old-00", "new-00"]})["results"]
    assert results == {"old-00": False, "new-00": True}


def test_bulk_check_limits_and_unknown_purpose(api):
    api.purpose("push", "marketing")
    too_many = [f"s{i}" for i in range(1001)]
    assert "subject_ids" in api.call("POST", "/v1/checks", {"purpose": "push", "subject_ids": too_many},
                                     expect=422)["errors"]
    assert "purpose" in api.call("POST", "/v1/checks", {"purpose": "nope", "subject_ids": ["a"]},
                                 expect=422)["errors"]
    assert api.call("GET", "/v1/audiences/nope", expect=404)["status"] == 404
    assert "limit" in api.call("GET", "/v1/audiences/push", query={"limit": 501}, expect=422)["errors"]
