"""A key revoked through one worker process stops working at the very next request in every
worker: no sleep between the revocation and the checks."""

from tests.live.conftest import OPERATOR


def test_a_revoked_key_stops_at_once_in_every_worker(live_server):
    _, tenant = live_server.call("POST", "/v1/tenants", {"name": "Live"}, OPERATOR)
    admin = tenant["admin_key"]
    for round_ in range(3):
        status, issued = live_server.call("POST", "/v1/keys", {"name": f"r{round_}", "scopes": ["consents:read"]}, admin)
        assert status == 201
        reader = issued["key"]
        for _ in range(20):  # a fresh connection each: both workers cache the key and its version
            assert live_server.call("GET", "/v1/subjects/u1/consents", token=reader)[0] == 404

        assert live_server.call("DELETE", f"/v1/keys/{issued['id']}", token=admin)[0] == 200
        answers = [live_server.call("GET", "/v1/subjects/u1/consents", token=reader)[0] for _ in range(20)]
        assert set(answers) == {401}, answers
