"""A key revoked through one worker process stops working at the very next request in every
worker: no wait between the revocation and the checks."""


def test_a_revoked_key_stops_at_once_in_every_worker(live_server):
    tenant = live_server.api().new_tenant("Live", purposes=None)
    for round_ in range(3):
        issued = tenant.create_key("consents:read", name=f"r{round_}")
        reader = issued["key"]
        for _ in range(20):  # a fresh connection each: both workers cache the key and its version
            tenant.get("/v1/subjects/u1/consents", token=reader, expect=404)

        tenant.delete(f"/v1/keys/{issued['id']}", expect=200)
        answers = [tenant.get("/v1/subjects/u1/consents", token=reader).status_code for _ in range(20)]
        assert set(answers) == {401}, answers
