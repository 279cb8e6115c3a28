"""The same HTTP API on the MongoDB adapter (mongomock), end to end."""

import pytest

from consent_api.domain.clock import format_ts, system_clock
from consent_api.domain.ledger import verify_chain
from consent_api.web.app import create_app
from tests.builders import decision

pytestmark = pytest.mark.parametrize("adapter", ["mongomock"], indirect=True)


@pytest.fixture(autouse=True)
def clock_near_now(clock):
    """The app's clock moved to the real time, before the app starts: MongoDB (and mongomock)
    expire idempotency records by the server's own clock."""
    clock.now = system_clock().replace(microsecond=0)
    return clock


def test_a_subjects_life_on_mongodb(tenant, clock):
    tenant.purpose("location", kind="device_permission")
    tenant.purpose("faceid", sensitive=True)
    first = tenant.record("u1", decision("push"), decision("location", False),
                          headers={"Idempotency-Key": "k-1"})
    assert first.status_code == 201
    replay = tenant.record("u1", decision("push"), decision("location", False),
                           headers={"Idempotency-Key": "k-1"})
    assert replay.get_data() == first.get_data()
    assert tenant.record("u1", decision("faceid")).status_code == 422
    granted_at = clock.now
    clock.advance(hours=1)
    withdrawn = tenant.post("/v1/subjects/u1/consents/withdraw-all", {"source": {"channel": "ios"}})
    assert [e["action"] for e in withdrawn.json["events"]] == ["withdraw"]
    history = tenant.get("/v1/subjects/u1/history").json["items"]
    assert verify_chain(history) == (3, None)
    half_way = format_ts(granted_at + (clock.now - granted_at) / 2)
    past = tenant.get(f"/v1/subjects/u1/consents?at={half_way}").json
    assert past["purposes"]["push"]["status"] == "granted"
    tenant.grant("u2", "push")
    assert tenant.post("/v1/checks", {"purpose": "push", "subject_ids": ["u1", "u2", "u3"]}).json[
        "results"] == {"u1": False, "u2": True, "u3": False}
    assert tenant.get("/v1/audiences/push").json["items"] == ["u2"]
    assert tenant.delete("/v1/subjects/u2").status_code == 204
    assert tenant.get("/v1/subjects/u2/consents").status_code == 404
    assert tenant.get("/v1/audiences/push").json["items"] == []


def test_a_second_app_on_the_same_store_verifies_earlier_receipts(tenant, clock, settings):
    import jwt

    receipt = tenant.grant("u1", "push")["receipt"]
    app = tenant.client.application
    restarted = create_app(settings, store=app.extensions["consent_api.deps"].store, clock=clock)
    jwks = restarted.test_client().get("/.well-known/jwks.json").json
    key = next(k for k in jwks["keys"] if k["kid"] == jwt.get_unverified_header(receipt)["kid"])
    assert jwt.decode(receipt, jwt.PyJWK(key).key, algorithms=["ES256"])["sub"] == "u1"
