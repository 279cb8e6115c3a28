from tests.support.api import OPERATOR_TOKEN, bearer
from tests.support.apps import ON_A_SQLITE_FILE


def test_operator_creates_tenant_and_key_is_shown_once(client, tenant):
    listed = tenant.get("/v1/keys").json["items"]
    assert [k["scopes"] for k in listed] == [["admin"]]
    assert "key" not in listed[0] and listed[0]["revoked_at"] is None
    assert tenant.admin.startswith("sk_") and listed[0]["prefix"] == tenant.admin[:10]


def test_tenant_creation_needs_the_operator_token(client, tenant):
    assert client.post("/v1/tenants", json={"name": "X"}).status_code == 401
    assert client.post("/v1/tenants", json={"name": "X"}, headers=bearer("nope")).status_code == 401
    denied = client.post("/v1/tenants", json={"name": "X"}, headers=tenant.headers)
    assert denied.status_code == 403
    assert denied.content_type == "application/problem+json"


def test_tenant_body_is_validated(client):
    response = client.post("/v1/tenants", json={"name": ""}, headers=bearer(OPERATOR_TOKEN))
    assert response.status_code == 422
    assert "name" in response.json["errors"]


def test_scoped_key_reaches_only_its_scope(tenant):
    reader = tenant.issue_key("consents:read")
    tenant.grant("u1", "push")
    assert tenant.get("/v1/subjects/u1/consents", token=reader).status_code == 200
    refused = tenant.record("u1", {"purpose": "push", "granted": False}, token=reader)
    assert refused.status_code == 403
    assert tenant.get("/v1/keys", token=reader).status_code == 403
    assert tenant.state("u1")["purposes"]["push"]["status"] == "granted"


def test_revoked_key_stops_working_at_once(tenant):
    writer = tenant.issue_key("consents:write", "consents:read")
    key_id = next(k["id"] for k in tenant.get("/v1/keys").json["items"] if k["scopes"] != ["admin"])
    assert tenant.get("/v1/subjects/u1/consents", token=writer).status_code == 404
    revoked = tenant.delete(f"/v1/keys/{key_id}")
    assert revoked.status_code == 200 and revoked.json["revoked_at"]
    assert tenant.get("/v1/subjects/u1/consents", token=writer).status_code == 401


def test_keys_list_paginates(tenant):
    for _ in range(4):
        tenant.issue_key("consents:read")
    first = tenant.get("/v1/keys?limit=2").json
    second = tenant.get(f"/v1/keys?limit=2&cursor={first['next_cursor']}").json
    third = tenant.get(f"/v1/keys?limit=2&cursor={second['next_cursor']}").json
    ids = [k["id"] for page in (first, second, third) for k in page["items"]]
    assert len(ids) == 5 == len(set(ids))
    assert third["next_cursor"] is None


def test_limit_above_500_is_422(tenant):
    response = tenant.get("/v1/keys?limit=501")
    assert response.status_code == 422 and "limit" in response.json["errors"]


def test_publishable_key_needs_origins_and_no_scopes(tenant):
    missing = tenant.post("/v1/keys", {"name": "web", "type": "publishable", "origins": []})
    assert missing.status_code == 422 and "origins" in missing.json["errors"]
    scoped = tenant.post("/v1/keys", {"name": "web", "type": "publishable", "scopes": ["consents:read"],
                                      "origins": ["https://shop.example.com"]})
    assert scoped.status_code == 422
    made = tenant.post("/v1/keys", {"name": "web", "type": "publishable",
                                    "origins": ["https://Shop.example.com"]})
    assert made.status_code == 201
    assert made.json["key"].startswith("pk_") and made.json["origins"] == ["https://shop.example.com"]


def test_publishable_key_cannot_reach_private_routes(tenant):
    pk = tenant.issue_key(type="publishable", origins=["https://shop.example.com"])
    assert tenant.get("/v1/purposes", token=pk).status_code == 403
    assert tenant.record("u1", {"purpose": "push", "granted": True}, token=pk).status_code == 403


@ON_A_SQLITE_FILE
def test_keys_are_stored_only_as_hashes(app, tenant):
    store = app.extensions["consent_api.deps"].store
    raw = open(store.path, "rb").read()
    assert tenant.admin.encode() not in raw
