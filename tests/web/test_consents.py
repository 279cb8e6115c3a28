import hashlib
import json

import jwt
import pytest

from consent_api.domain.ledger import ZERO_HASH
from tests import builders
from tests.builders import decision
from tests.support.apps import ON_A_SQLITE_FILE


@pytest.fixture
def catalog(tenant):
    tenant.purpose("location", kind="device_permission")
    tenant.purpose("marketing_sms", kind="marketing")
    tenant.purpose("account", essential=True)
    return tenant


def test_record_answers_events_state_and_receipt(catalog, client):
    response = catalog.record("u-1", decision("push"), decision("location", False),
                              headers={"User-Agent": "ConsentTest/1.0"})
    assert response.status_code == 201
    body = response.json
    assert [(e["purpose"], e["action"], e["seq"]) for e in body["events"]] == [
        ("push", "grant", 1), ("location", "deny", 2)]
    first = body["events"][0]
    assert first["prev_hash"] == ZERO_HASH and first["subject_id"] == "u-1"
    assert first["evidence"]["user_agent_sha256"] == hashlib.sha256(b"ConsentTest/1.0").hexdigest()
    assert first["evidence"]["ip_prefix"] == "127.0.0.0/24"
    assert body["state"]["purposes"]["push"]["allowed"] is True
    assert body["state"]["purposes"]["location"]["status"] == "denied"
    assert body["state"]["purposes"]["marketing_sms"]["status"] == "not_asked"
    jwks = client.get("/.well-known/jwks.json").json
    key = jwt.PyJWK(jwks["keys"][0])
    claims = jwt.decode(body["receipt"], key.key, algorithms=["ES256"])
    assert claims["sub"] == "u-1" and claims["tenant_id"] == catalog.id
    assert [d["event_id"] for d in claims["decisions"]] == [e["event_id"] for e in body["events"]]


def test_refusing_a_granted_purpose_is_a_withdrawal(catalog):
    catalog.grant("u1", "push")
    again = catalog.grant("u1", "push")
    assert again["events"][0]["action"] == "grant" and again["events"][0]["seq"] == 2
    withdrawn = catalog.refuse("u1", "push")
    assert withdrawn["events"][0]["action"] == "withdraw"
    assert withdrawn["state"]["purposes"]["push"]["status"] == "withdrawn"
    denied_again = catalog.refuse("u1", "push")
    assert denied_again["events"][0]["action"] == "deny"


def test_essential_purposes_are_always_allowed_and_cannot_be_refused(catalog):
    catalog.grant("u1", "push")
    account = catalog.state("u1")["purposes"]["account"]
    assert (account["status"], account["allowed"], account["can_prompt"]) == ("granted", True, False)
    refused = catalog.record("u1", decision("push", False), decision("account", False))
    assert refused.status_code == 422
    assert "decisions.1.granted" in refused.json["errors"]
    assert len(catalog.get("/v1/subjects/u1/history").json["items"]) == 1


@pytest.mark.parametrize("body, field", [
    (builders.consents(), "decisions"),
    (builders.consents(decision("push"), decision("push")), "decisions.1.purpose"),
    (builders.consents(decision("nope")), "decisions.0.purpose"),
    (builders.consents(decision("push"), policy_version="2099-01"), "policy_version"),
    (builders.consents(decision("push"), channel="fax"), "source.channel"),
    ({"decisions": [decision("push")], "policy_version": "2026-01"}, "source"),
    (builders.consents(decision("push", granted="yes")), "decisions.0.granted"),
    (builders.consents(decision("push"), age_band="toddler"), "age_band"),
    (builders.consents(decision("push"), surprise=1), "surprise"),
    (builders.consents(decision("push"), occurred_at="yesterday"), "occurred_at"),
    ([1, 2], "_body"),
])
def test_invalid_decisions_are_422_and_write_nothing(catalog, body, field):
    response = catalog.post("/v1/subjects/u1/consents", body)
    assert response.status_code == 422, response.json
    assert response.content_type == "application/problem+json"
    assert field in response.json["errors"]
    assert catalog.get("/v1/subjects/u1/consents").status_code == 404


def test_future_policy_is_not_yet_acceptable(catalog):
    catalog.policy("2026-09", effective_at="2026-09-01T00:00:00Z")
    response = catalog.record("u1", decision("push"), policy_version="2026-09")
    assert response.status_code == 422 and "policy_version" in response.json["errors"]


def test_one_purpose_and_unknowns(catalog):
    catalog.grant("u1", "push")
    one = catalog.get("/v1/subjects/u1/consents/push").json
    assert one["purpose"] == "push" and one["status"] == "granted" and one["allowed"] is True
    assert catalog.get("/v1/subjects/u1/consents/nope").status_code == 404
    assert catalog.get("/v1/subjects/ghost/consents/push").status_code == 404
    assert catalog.get("/v1/subjects/ghost/consents").status_code == 404
    assert catalog.get("/v1/subjects/bad%20id/consents").status_code == 422


def test_history_is_oldest_first_and_paginates(catalog):
    for granted in (True, False, True, False, True):
        catalog.record("u1", decision("push", granted))
    first = catalog.get("/v1/subjects/u1/history?limit=2").json
    seqs = [e["seq"] for e in first["items"]]
    cursor = first["next_cursor"]
    while cursor:
        page = catalog.get(f"/v1/subjects/u1/history?limit=2&cursor={cursor}").json
        seqs += [e["seq"] for e in page["items"]]
        cursor = page["next_cursor"]
    assert seqs == [1, 2, 3, 4, 5]
    assert catalog.get("/v1/subjects/u1/history?cursor=%%%").status_code == 422


def test_withdraw_all_withdraws_every_non_essential_grant(catalog):
    catalog.grant("u1", "push", "marketing_sms", "account")
    catalog.refuse("u1", "location")
    response = catalog.post("/v1/subjects/u1/consents/withdraw-all", {"source": {"channel": "android"}})
    assert response.status_code == 200
    assert sorted((e["purpose"], e["action"]) for e in response.json["events"]) == [
        ("marketing_sms", "withdraw"), ("push", "withdraw")]
    purposes = response.json["state"]["purposes"]
    assert {k: v["allowed"] for k, v in purposes.items()} == {
        "account": True, "location": False, "marketing_sms": False, "push": False}
    assert response.json["receipt"].count(".") == 2
    assert catalog.post("/v1/subjects/ghost/consents/withdraw-all",
                        {"source": {"channel": "web"}}).status_code == 404


def test_idempotency_key_replays_the_first_answer(catalog):
    headers = {"Idempotency-Key": "req-42"}
    first = catalog.record("u1", decision("push"), headers=headers)
    replay = catalog.record("u1", decision("push"), headers=headers)
    assert replay.status_code == 201 and replay.get_data() == first.get_data()
    assert len(catalog.get("/v1/subjects/u1/history").json["items"]) == 1
    different = catalog.record("u1", decision("push", False), headers=headers)
    assert different.status_code == 409
    other_key = catalog.issue_key("consents:write")
    fresh = catalog.record("u1", decision("push"), token=other_key, headers=headers)
    assert fresh.status_code == 201 and fresh.json["events"][0]["seq"] == 2


def test_failed_request_does_not_burn_its_idempotency_key(catalog):
    headers = {"Idempotency-Key": "retry-me"}
    assert catalog.record("u1", decision("nope"), headers=headers).status_code == 422
    catalog.purpose("nope")
    assert catalog.record("u1", decision("nope"), headers=headers).status_code == 201


@ON_A_SQLITE_FILE
def test_state_survives_a_restart(new_app, catalog):
    catalog.grant("u1", "push")
    restarted = new_app().test_client()
    again = restarted.get("/v1/subjects/u1/consents", headers=catalog.headers)
    assert again.status_code == 200 and again.json["purposes"]["push"]["status"] == "granted"


def test_chain_verifies_by_the_contract_rule(catalog):
    for granted in (True, False, True):
        catalog.record("u1", decision("push", granted), decision("location", not granted))
    prev = ZERO_HASH
    for event in catalog.get("/v1/subjects/u1/history").json["items"]:
        body = {k: v for k, v in event.items() if k not in ("hash", "subject_id")}
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert event["prev_hash"] == prev
        assert hashlib.sha256(prev.encode() + canonical.encode("utf-8")).hexdigest() == event["hash"]
        prev = event["hash"]


def test_two_tenants_are_invisible_to_each_other(new_tenant):
    acme, globex = new_tenant("Acme"), new_tenant("Globex")
    acme.grant("shared-id", "push")
    assert globex.get("/v1/subjects/shared-id/consents").status_code == 404
    assert globex.get("/v1/subjects/shared-id/history").status_code == 404
    assert globex.get("/v1/subjects/shared-id/consents/push").status_code == 404
    globex.refuse("shared-id", "push")
    assert acme.state("shared-id")["purposes"]["push"]["status"] == "granted"
    assert globex.state("shared-id")["purposes"]["push"]["status"] == "denied"
    acme_history = acme.get("/v1/subjects/shared-id/history").json["items"]
    assert {e["tenant_id"] for e in acme_history} == {acme.id}
    assert globex.post("/v1/checks", {"purpose": "push", "subject_ids": ["shared-id"]}).json[
        "results"] == {"shared-id": False}
    assert globex.get("/v1/audiences/push").json["items"] == []
    assert acme.get("/v1/audiences/push").json["items"] == ["shared-id"]
    assert globex.get(f"/v1/keys/{acme.get('/v1/keys').json['items'][0]['id']}").status_code == 404
