"""A key revoked through one worker process stops working in every worker within
VERSION_CHECK_S (the longest a worker reuses its cached credentials version)."""

import time

from consent_api.store.sqlite import VERSION_CHECK_S


def test_revocation_reaches_every_worker(live_server):
    tenant = live_server.api().new_tenant("Live", purposes=None)
    issued = tenant.create_key("consents:read", name="reader")
    reader = issued["key"]
    for _ in range(20):  # a fresh connection each: both workers cache the key
        assert tenant.get("/v1/subjects/u1/consents", token=reader).status_code == 404

    tenant.delete(f"/v1/keys/{issued['id']}", expect=200)
    time.sleep(VERSION_CHECK_S * 1.5)  # every cached version is now older than VERSION_CHECK_S

    assert {tenant.get("/v1/subjects/u1/consents", token=reader).status_code for _ in range(20)} == {401}
