"""CORS on a subject's consents, for a page in an app's WebView acting with the signed-in user's
subject token: only origins registered on the token's own tenant's publishable keys, never `*`."""

from __future__ import annotations

import pytest

from tests.builders import ORIGIN, consents, decision
from tests.support.api import Api, bearer

STATE = "/v1/subjects/user-1/consents"
OTHER_TENANTS_ORIGIN = "https://shop.other.example"
UNREGISTERED = "https://evil.example.net"


@pytest.fixture
def world(api, app_tenant, new_tenant):
    """An app's tenant (publishable key for ORIGIN) whose user-1 allowed marketing SMS, and
    another tenant with a publishable key for another origin."""
    other = new_tenant("另一家商城", purposes=None)
    other.issue_key(type="publishable", origins=[OTHER_TENANTS_ORIGIN], name="other shop")
    api.post(STATE, json=consents(decision("marketing_sms", True), channel="ios"), token=app_tenant.writer,
             expect=201)
    return api, app_tenant


def web_decision() -> dict:
    return consents(decision("analytics_cookies", False), channel="web")


def preflight(api: Api, origin: str, method: str = "POST"):
    return api.client.options(STATE, headers={
        "Origin": origin, "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization, content-type, idempotency-key"})


def test_preflight_answers_registered_origins_for_the_three_headers(world):
    api, _ = world
    ok = preflight(api, ORIGIN)
    assert ok.status_code == 200
    assert ok.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert {h.strip() for h in ok.headers["Access-Control-Allow-Headers"].split(",")} == {
        "Authorization", "Content-Type", "Idempotency-Key"}
    assert {m.strip() for m in ok.headers["Access-Control-Allow-Methods"].split(",")} >= {"GET", "POST"}
    assert "Origin" in ok.headers["Vary"]
    assert "Access-Control-Allow-Origin" not in preflight(api, UNREGISTERED).headers
    # The preflight carries no credential, so it cannot tell tenants apart; the answer to the
    # request itself does (next test).
    assert preflight(api, OTHER_TENANTS_ORIGIN, "GET").headers["Access-Control-Allow-Origin"] == OTHER_TENANTS_ORIGIN


@pytest.mark.parametrize("origin, allowed", [(ORIGIN, True), (OTHER_TENANTS_ORIGIN, False),
                                             (UNREGISTERED, False)])
def test_the_subject_token_reads_and_records_from_its_tenants_origins_only(world, origin, allowed):
    api, tenant = world
    token = tenant.subject_token("user-1")
    read = api.get(STATE, token=token, headers={"Origin": origin}, expect=200)
    assert read.get_json()["purposes"]["marketing_sms"]["status"] == "granted"
    recorded = api.post(STATE, json=web_decision(), token=token, headers={"Origin": origin}, expect=201)
    for response in (read, recorded):
        assert response.headers.get("Access-Control-Allow-Origin") == (origin if allowed else None)
        assert response.headers.get("Access-Control-Allow-Origin") != "*"
        assert "Origin" in response.headers["Vary"]
    if allowed:
        assert "Idempotent-Replayed" in recorded.headers["Access-Control-Expose-Headers"]


def test_errors_carry_cors_so_the_page_can_read_them(world):
    api, tenant = world
    unknown = api.get("/v1/subjects/nobody/consents", token=tenant.subject_token("nobody"),
                      headers={"Origin": ORIGIN}, expect=404)
    assert unknown.headers["Access-Control-Allow-Origin"] == ORIGIN, "404 means nothing decided yet"
    expired = tenant.subject_token("user-1", lifetime_s=60, iat=1_000_000_000)
    refused = api.get(STATE, token=expired, headers={"Origin": ORIGIN}, expect=401)
    assert refused.headers["Access-Control-Allow-Origin"] == ORIGIN
    invalid = api.post(STATE, json={"decisions": []}, token=tenant.subject_token("user-1"),
                       headers={"Origin": ORIGIN}, expect=422)
    assert invalid.headers["Access-Control-Allow-Origin"] == ORIGIN


def test_other_credentials_and_routes_get_no_cors(world):
    api, tenant = world
    for token in (tenant.reader, tenant.admin, tenant.publishable):
        response = api.client.get(STATE, headers={**bearer(token), "Origin": ORIGIN})
        assert "Access-Control-Allow-Origin" not in response.headers, token
    token = tenant.subject_token("user-1")
    for path in (STATE + "/marketing_sms", "/v1/subjects/user-1/history"):
        response = api.get(path, token=token, headers={"Origin": ORIGIN}, expect=200)
        assert "Access-Control-Allow-Origin" not in response.headers, path
    withdraw = api.post(STATE + "/withdraw-all", json={"source": {"channel": "web"}}, token=token,
                        headers={"Origin": ORIGIN}, expect=200)
    assert "Access-Control-Allow-Origin" not in withdraw.headers


def test_a_revoked_publishable_key_takes_its_origin_with_it(world):
    api, tenant = world
    key_id = _publishable_id(api, tenant)
    api.delete(f"/v1/keys/{key_id}", token=tenant.admin, expect=200)
    response = api.get(STATE, token=tenant.subject_token("user-1"), headers={"Origin": ORIGIN}, expect=200)
    assert "Access-Control-Allow-Origin" not in response.headers


def _publishable_id(api: Api, tenant) -> str:
    keys = api.get("/v1/keys", token=tenant.admin, expect=200).get_json()["items"]
    return next(k["id"] for k in keys if k["type"] == "publishable")


@pytest.mark.parametrize("part", ["panel", "app"])
def test_the_snippets_lazy_parts_are_served_cacheable(world, part):
    api, _ = world
    response = api.get(f"/sdk/consent-{part}.js", expect=200)
    assert response.mimetype == "application/javascript"
    assert "public" in response.headers["Cache-Control"]
    again = api.get(f"/sdk/consent-{part}.js", headers={"If-None-Match": response.headers["ETag"]}, expect=304)
    assert again.get_data() == b""
    api.get("/sdk/consent-other.js", expect=404)
