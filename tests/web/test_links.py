"""POST /v1/subjects/{id}/links: web decisions made before sign-in carry over to the account.

Merge rule: the most recent decision per purpose wins; both chains stay intact."""

from datetime import datetime, timezone

import jwt
import pytest

from consent_api.domain.clock import parse_ts
from tests import builders
from tests.support.api import bearer

ORIGIN = "https://shop.example.com"
ANON = "anon-0123456789abcdef0123456789abcdef"


@pytest.fixture
def web(tenant):
    tenant.purpose("analytics", kind="cookie")
    tenant.purpose("ads", kind="marketing")
    tenant.purpose("faceid", kind="processing", sensitive=True)
    tenant.publishable = tenant.issue_key(type="publishable", origins=[ORIGIN])
    return tenant


def browser_decides(web, subject=ANON, gpc=False, **granted):
    body = {"subject_id": subject, "policy_version": builders.POLICY, "locale": "zh-CN", "gpc": gpc,
            "decisions": [{"purpose": p, "granted": g} for p, g in granted.items()]}
    response = web.client.post("/v1/public/consents", json=body,
                               headers={**bearer(web.publishable), "Origin": ORIGIN,
                                        "User-Agent": "Mozilla/5.0 (test browser)"})
    assert response.status_code == 201, response.json
    return response.json["events"]


def link(web, subject="user-1", anonymous=ANON, token=None, headers=None):
    return web.post(f"/v1/subjects/{subject}/links", {"anonymous_subject_id": anonymous}, token=token,
                    headers=headers)


def actions(events):
    return [(e["purpose"], e["action"]) for e in events]


def test_newer_web_decisions_carry_over_with_a_reference_to_the_anonymous_event(web, clock):
    web.grant("user-1", "ads")  # in the app, first
    clock.advance(hours=1)
    anon_events = browser_decides(web, gpc=True, analytics=True, ads=False)
    clock.advance(hours=1)

    response = link(web)
    assert response.status_code == 200, response.json
    body = response.json
    assert actions(body["events"]) == [("ads", "withdraw"), ("analytics", "grant")]
    by_purpose = {e["purpose"]: e for e in anon_events}
    for event in body["events"]:
        source = by_purpose[event["purpose"]]
        assert event["subject_id"] == "user-1"
        assert event["source"]["channel"] == "web"
        assert event["source"]["collection_point"] == "link:" + source["event_id"]
        assert event["policy_version"] == source["policy_version"]
        assert event["occurred_at"] == source["occurred_at"]
        assert event["recorded_at"] > source["recorded_at"]
        assert event["locale"] == "zh-CN"
        assert event["evidence"] == source["evidence"] and event["evidence"]["gpc"] is True
    purposes = body["state"]["purposes"]
    assert purposes["analytics"]["allowed"] is True and purposes["ads"]["status"] == "withdrawn"
    receipt = jwt.decode(body["receipt"], options={"verify_signature": False})
    assert receipt["sub"] == "user-1"
    assert [d["event_id"] for d in receipt["decisions"]] == [e["event_id"] for e in body["events"]]
    assert web.state("user-1")["purposes"]["analytics"]["allowed"] is True


def test_the_account_keeps_a_decision_newer_than_the_web_one(web, clock):
    browser_decides(web, analytics=True, ads=True)
    clock.advance(minutes=5)
    web.refuse("user-1", "analytics")  # decided again in the app, later
    clock.advance(minutes=5)

    response = link(web)
    assert response.status_code == 200
    assert actions(response.json["events"]) == [("ads", "grant")]
    purposes = response.json["state"]["purposes"]
    assert purposes["analytics"]["status"] == "denied" and purposes["ads"]["allowed"] is True


def test_both_chains_stay_intact_and_linking_again_carries_only_what_is_new(web, clock):
    browser_decides(web, analytics=True, ads=True)
    anon_before = web.get(f"/v1/subjects/{ANON}/history").json["items"]
    clock.advance(minutes=1)
    assert len(link(web).json["events"]) == 2
    anon_after = web.get(f"/v1/subjects/{ANON}/history").json["items"]
    assert anon_after == anon_before, "the anonymous chain is only read"

    clock.advance(minutes=1)
    again = link(web)
    assert again.status_code == 200 and again.json["events"] == []

    clock.advance(minutes=1)
    browser_decides(web, ads=False)  # the visitor changes their mind on the web, still signed out
    clock.advance(minutes=1)
    assert actions(link(web).json["events"]) == [("ads", "withdraw")]

    history = web.get("/v1/subjects/user-1/history").json["items"]
    assert [e["seq"] for e in history] == [1, 2, 3]
    assert [e["prev_hash"] for e in history[1:]] == [e["hash"] for e in history[:-1]]


def test_an_unknown_anonymous_subject_links_nothing(web):
    response = link(web, anonymous="anon-never-decided")
    assert response.status_code == 200
    assert response.json["events"] == []
    assert response.json["state"]["purposes"]["analytics"]["status"] == "not_asked"


@pytest.mark.parametrize("body, field", [
    ({}, "anonymous_subject_id"),
    ({"anonymous_subject_id": "user-2"}, "anonymous_subject_id"),
    ({"anonymous_subject_id": 42}, "anonymous_subject_id"),
    ({"anonymous_subject_id": ANON, "extra": 1}, "extra"),
])
def test_link_requests_are_validated(web, body, field):
    response = web.post("/v1/subjects/user-1/links", body)
    assert response.status_code == 422 and field in response.json["errors"]


def test_a_subject_is_not_linked_to_itself(web):
    browser_decides(web, analytics=True)
    response = link(web, subject=ANON)
    assert response.status_code == 422 and "anonymous_subject_id" in response.json["errors"]


def test_who_may_link(web, clock):
    clock.now = datetime.now(timezone.utc)  # PyJWT checks exp against the wall clock
    browser_decides(web, analytics=True)
    reader = web.issue_key("consents:read")
    writer = web.issue_key("consents:write")
    assert link(web, token=reader).status_code == 403
    assert link(web, token=web.publishable).status_code == 403
    assert link(web, token="sk_unknown").status_code == 401

    issued = web.post("/v1/subject-token-keys", {"alg": "HS256"}).json
    now = int(clock().timestamp())
    token = jwt.encode({"sub": "user-2", "iat": now, "exp": now + 600}, issued["secret"],
                       algorithm="HS256", headers={"kid": issued["kid"]})
    assert link(web, subject="user-1", token=token).status_code == 403, "only its own subject"
    assert link(web, subject="user-2", token=token).status_code == 200
    assert link(web, token=writer).status_code == 200


def test_rules_apply_to_carried_grants(web, clock):
    # The account belongs to a child (age band recorded in the app, with a refusal).
    web.refuse("kid-1", "push", age_band="under_14")
    clock.advance(minutes=1)
    browser_decides(web, analytics=True, ads=False)
    clock.advance(minutes=1)
    response = link(web, subject="kid-1")
    assert response.status_code == 422
    assert "anonymous_subject_id.analytics" in response.json["errors"]
    assert len(web.get("/v1/subjects/kid-1/history").json["items"]) == 1, "nothing written"

    # Refusals carry over to a child's account.
    other = "anon-ffffffffffffffffffffffffffffffff"
    browser_decides(web, subject=other, ads=False)
    clock.advance(minutes=1)
    assert actions(link(web, subject="kid-1", anonymous=other).json["events"]) == [("ads", "deny")]


def test_sensitive_grants_carry_over_only_when_given_separately(web, clock):
    # Sensitive purposes are never on the banner; an app may still have asked an anon- subject.
    web.grant(ANON, "faceid", channel="web", decisions=[builders.decision("faceid", True, separate=True)])
    clock.advance(minutes=1)
    event = link(web).json["events"][0]
    assert (event["purpose"], event["action"], event["separate"]) == ("faceid", "grant", True)


def test_grants_of_archived_purposes_are_not_carried(web, clock):
    browser_decides(web, analytics=True, ads=False)
    web.purpose("analytics", kind="cookie", archived=True)
    clock.advance(minutes=1)
    assert actions(link(web).json["events"]) == [("ads", "deny")]


def test_link_honours_idempotency_keys(web, clock):
    browser_decides(web, analytics=True)
    clock.advance(minutes=1)
    first = link(web, headers={"Idempotency-Key": "login-42"})
    replay = link(web, headers={"Idempotency-Key": "login-42"})
    assert replay.status_code == 200 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json == first.json
    assert len(web.get("/v1/subjects/user-1/history").json["items"]) == 1


def test_carried_events_keep_the_anonymous_decision_time_as_evidence(web, clock):
    browser_decides(web, analytics=True)
    decided = clock()
    clock.advance(days=2)
    event = link(web).json["events"][0]
    assert parse_ts(event["occurred_at"]) == decided
    assert parse_ts(event["recorded_at"]) == clock()
