"""Every consent rule, shown through the HTTP API alone."""

import pytest

from tests.builders import decision


@pytest.fixture
def app_catalog(tenant):
    tenant.purpose("faceid", kind="processing", sensitive=True)
    tenant.purpose("abroad", kind="cross_border")
    tenant.purpose("location", kind="device_permission")
    return tenant


def history_len(tenant, subject):
    response = tenant.get(f"/v1/subjects/{subject}/history")
    return 0 if response.status_code == 404 else len(response.json["items"])


def test_material_policy_makes_earlier_grants_need_reconsent(app_catalog, clock):
    app_catalog.grant("u1", "push")
    app_catalog.policy("2026-03", effective_at="2026-03-02T00:00:00Z", material=True)
    before = app_catalog.state("u1")
    assert before["purposes"]["push"]["status"] == "granted" and before["policy_version"] == "2026-01"
    clock.advance(days=1)
    after = app_catalog.state("u1")
    push = after["purposes"]["push"]
    assert (push["status"], push["allowed"], push["can_prompt"]) == ("reconsent_required", False, True)
    assert after["needs_reconsent"] is True and after["policy_version"] == "2026-03"
    regranted = app_catalog.grant("u1", "push", policy_version="2026-03")
    assert regranted["state"]["needs_reconsent"] is False


@pytest.mark.parametrize("purpose", ["faceid", "abroad"])
def test_sensitive_grant_without_separate_is_422_and_writes_nothing(app_catalog, purpose):
    app_catalog.grant("u1", "push")
    response = app_catalog.record("u1", decision("push", False), decision(purpose, True))
    assert response.status_code == 422
    assert "decisions.1.separate" in response.json["errors"] and purpose in response.json["detail"]
    assert history_len(app_catalog, "u1") == 1
    ok = app_catalog.record("u1", decision(purpose, True, separate=True))
    assert ok.status_code == 201 and ok.json["events"][0]["separate"] is True


def test_under_14_grants_need_a_guardian(app_catalog):
    child = app_catalog.record("kid", decision("push"), age_band="under_14")
    assert child.status_code == 422 and "actor" in child.json["errors"]
    assert history_len(app_catalog, "kid") == 0
    guardian = {"type": "guardian", "id": "parent-7"}
    ok = app_catalog.record("kid", decision("push"), age_band="under_14", actor=guardian)
    assert ok.status_code == 201 and ok.json["state"]["age_band"] == "under_14"
    # the band sticks: a later grant without a guardian is refused, a withdrawal never is
    assert app_catalog.record("kid", decision("location")).status_code == 422
    withdrawn = app_catalog.record("kid", decision("push", False))
    assert withdrawn.status_code == 201 and withdrawn.json["events"][0]["action"] == "withdraw"


def test_refusal_gives_next_prompt_48_hours_later(app_catalog):
    state = app_catalog.refuse("u1", "push")["state"]["purposes"]["push"]
    assert state["can_prompt"] is False
    assert state["next_prompt_at"] == "2026-03-03T08:00:00.000000Z"


def test_a_prompt_shown_starts_the_cooldown(app_catalog, clock):
    response = app_catalog.post("/v1/subjects/u1/prompts",
                                {"purposes": ["push", "location"], "source": {"channel": "android"}})
    assert response.status_code == 201
    assert [e["action"] for e in response.json["events"]] == ["prompt", "prompt"]
    push = app_catalog.state("u1")["purposes"]["push"]
    assert (push["status"], push["can_prompt"]) == ("not_asked", False)
    clock.advance(hours=48)
    assert app_catalog.state("u1")["purposes"]["push"]["can_prompt"] is True
    history = app_catalog.get("/v1/subjects/u1/history").json["items"]
    assert [e["action"] for e in history] == ["prompt", "prompt"]
    unknown = app_catalog.post("/v1/subjects/u1/prompts", {"purposes": ["nope"], "source": {"channel": "ios"}})
    assert unknown.status_code == 422


def test_client_time_is_evidence_not_truth(app_catalog, clock):
    late = app_catalog.record("u1", decision("push"), occurred_at="2026-02-01T00:00:00Z")
    assert late.status_code == 201
    event = late.json["events"][0]
    assert event["occurred_at"] == "2026-02-01T00:00:00.000000Z"
    assert event["recorded_at"] == "2026-03-01T08:00:00.000000Z"
    future = app_catalog.record("u1", decision("push"), occurred_at="2026-03-01T08:06:00Z")
    assert future.status_code == 422 and "occurred_at" in future.json["errors"]
    within_skew = app_catalog.record("u1", decision("push"), occurred_at="2026-03-01T08:04:00Z")
    assert within_skew.status_code == 201


def test_point_in_time_state_shows_withdrawal_is_not_retroactive(app_catalog, clock):
    app_catalog.grant("u1", "push")                    # March 1st
    clock.advance(days=60)
    app_catalog.refuse("u1", "push")                   # end of April
    march = app_catalog.get("/v1/subjects/u1/consents?at=2026-03-15T00:00:00Z").json
    assert march["purposes"]["push"]["status"] == "granted" and march["at"].startswith("2026-03-15")
    now = app_catalog.get("/v1/subjects/u1/consents").json
    assert now["purposes"]["push"]["status"] == "withdrawn"
    may = app_catalog.get("/v1/subjects/u1/consents?at=2026-04-30T08:00:00Z").json
    assert may["purposes"]["push"]["status"] == "withdrawn"
    assert app_catalog.get("/v1/subjects/u1/consents?at=2099-01-01T00:00:00Z").status_code == 422
    assert app_catalog.get("/v1/subjects/u1/consents?at=last-march").status_code == 422


def test_os_permission_mismatch_is_flagged(app_catalog):
    response = app_catalog.record("u1", decision("location", False, os_permission="granted"))
    location = response.json["state"]["purposes"]["location"]
    assert location["os_permission"] == "granted" and location["os_permission_mismatch"] is True
    fixed = app_catalog.record("u1", decision("location", True, os_permission="granted"))
    assert fixed.json["state"]["purposes"]["location"]["os_permission_mismatch"] is False
    wrong_kind = app_catalog.record("u1", decision("push", True, os_permission="granted"))
    assert wrong_kind.status_code == 422


def test_archived_purpose_takes_withdrawals_but_no_grants(app_catalog):
    app_catalog.grant("u1", "location")
    app_catalog.delete("/v1/purposes/location")
    assert app_catalog.record("u1", decision("location")).status_code == 422
    withdrawn = app_catalog.refuse("u1", "location")
    assert withdrawn["state"]["purposes"]["location"]["archived"] is True
    app_catalog.grant("u2", "push")
    assert "location" not in app_catalog.state("u2")["purposes"]
