"""A key revoked through one worker process stops working in every worker within
VERSION_CHECK_S (the longest a worker reuses its cached credentials version)."""

import time

from consent_api.store.sqlite import VERSION_CHECK_S
from tests.live.conftest import OPERATOR


def test_revocation_reaches_every_worker(live_server):
    status, tenant = live_server.call("POST", "/v1/tenants", {"name": "Live"}, OPERATOR)
    admin = tenant["admin_key"]
    status, issued = live_server.call("POST", "/v1/keys", {"name": "reader", "scopes": ["consents:read"]}, admin)
    assert status == 201
    reader = issued["key"]
    for _ in range(20):  # a fresh connection each: both workers cache the key
        assert live_server.call("GET", "/v1/subjects/u1/consents", token=reader)[0] == 404

    assert live_server.call("DELETE", f"/v1/keys/{issued['id']}", token=admin)[0] == 200
    time.sleep(VERSION_CHECK_S * 1.5)

    assert {live_server.call("GET", "/v1/subjects/u1/consents", token=reader)[0] for _ in range(20)} == {401}
