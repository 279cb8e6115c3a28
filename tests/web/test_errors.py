import pytest

PROBLEM = "application/problem+json"


def assert_problem(response, status):
    assert response.status_code == status
    assert response.content_type == PROBLEM
    assert set(response.json) >= {"type", "title", "status", "detail"}
    assert response.json["status"] == status


def test_unknown_route_is_a_problem(client):
    assert_problem(client.get("/v1/nothing-here"), 404)


def test_wrong_method_is_a_problem(client, tenant):
    response = client.patch("/v1/purposes/push", headers=tenant.headers)
    assert_problem(response, 405)


def test_malformed_json_is_400(tenant):
    response = tenant.client.post("/v1/subjects/u1/consents", data=b"{not json",
                                  headers={**tenant.headers, "Content-Type": "application/json"})
    assert_problem(response, 400)


def test_empty_body_is_400(tenant):
    response = tenant.client.put("/v1/purposes/x", data=b"", headers=tenant.headers)
    assert_problem(response, 400)


def test_oversized_body_is_413(tenant):
    big = b'{"name": "' + b"x" * 2_000_000 + b'"}'
    response = tenant.client.post("/v1/keys", data=big,
                                  headers={**tenant.headers, "Content-Type": "application/json"})
    assert_problem(response, 413)


@pytest.mark.parametrize("header", [None, "Bearer", "Basic abc", "Bearer sk_unknown", "Bearer a.b.c",
                                    "Bearer pk_nope"])
def test_bad_credentials_are_401(client, header):
    headers = {"Authorization": header} if header else {}
    assert_problem(client.get("/v1/purposes", headers=headers), 401)


def test_security_headers_on_every_answer(client, tenant):
    for response in (client.get("/healthz"), client.get("/v1/nothing"), tenant.get("/v1/purposes")):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Cache-Control"]


def test_ops_endpoints(client):
    assert client.get("/healthz").json == {"status": "ok"}
    assert client.get("/readyz").json == {"status": "ready"}
    assert client.get("/.well-known/jwks.json").json["keys"][0]["alg"] == "ES256"
