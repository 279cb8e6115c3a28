import json

import pytest

ORIGIN = "https://shop.example.com"


@pytest.fixture
def web(tenant):
    tenant.purpose("analytics", kind="cookie", consent_mode=["analytics_storage"],
                   title={"en": "Analytics cookies", "zh-CN": "统计分析 Cookie"})
    tenant.purpose("faceid", kind="processing", sensitive=True)
    tenant.purpose("essential_cookies", kind="cookie", essential=True)
    tenant.publishable = tenant.issue_key(type="publishable", origins=[ORIGIN])
    return tenant


def public_get(web, path, origin=ORIGIN, **headers):
    return web.client.get(path, headers={"Authorization": f"Bearer {web.publishable}", "Origin": origin, **headers})


def test_config_resolves_texts_and_leaves_sensitive_purposes_out(web):
    response = public_get(web, "/v1/public/config?locale=zh-Hans")
    assert response.status_code == 200
    body = response.json
    assert body["locale"] == "zh-CN" and body["tenant"]["id"] == web.id
    purposes = {p["key"]: p for p in body["purposes"]}
    assert set(purposes) == {"analytics", "essential_cookies", "push"}
    assert purposes["analytics"]["title"] == "统计分析 Cookie"
    assert purposes["analytics"]["consent_mode"] == ["analytics_storage"]
    assert body["policy"]["version"] == "2026-01"
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "public" in response.headers["Cache-Control"]
    cached = public_get(web, "/v1/public/config?locale=zh-Hans", **{"If-None-Match": response.headers["ETag"]})
    assert cached.status_code == 304


def test_config_needs_a_registered_origin(web):
    denied = public_get(web, "/v1/public/config", origin="https://evil.example.net")
    assert denied.status_code == 403
    assert "Access-Control-Allow-Origin" not in denied.headers
    no_origin = web.client.get("/v1/public/config", headers={"Authorization": f"Bearer {web.publishable}"})
    assert no_origin.status_code == 403
    secret = public_get(web, "/v1/public/config")
    secret_key = web.client.get("/v1/public/config", headers={"Authorization": f"Bearer {web.admin}", "Origin": ORIGIN})
    assert secret.status_code == 200 and secret_key.status_code == 403


def test_preflight_echoes_only_registered_origins(web):
    ok = web.client.options("/v1/public/consents", headers={"Origin": ORIGIN,
                            "Access-Control-Request-Method": "POST"})
    assert ok.status_code == 200
    assert ok.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Idempotency-Key" in ok.headers["Access-Control-Allow-Headers"]
    other = web.client.options("/v1/public/consents", headers={"Origin": "https://evil.example.net"})
    assert "Access-Control-Allow-Origin" not in other.headers


def test_browser_decisions_land_in_the_ledger(web):
    body = {"subject_id": "anon-0123456789abcdef", "policy_version": "2026-01", "locale": "zh-CN",
            "gpc": True, "decisions": [{"purpose": "analytics", "granted": False},
                                       {"purpose": "push", "granted": True}]}
    response = web.client.post("/v1/public/consents", json=body,
                               headers={"Authorization": f"Bearer {web.publishable}", "Origin": ORIGIN})
    assert response.status_code == 201, response.json
    events = response.json["events"]
    assert {e["source"]["channel"] for e in events} == {"web"}
    assert all(e["evidence"]["gpc"] is True for e in events)
    history = web.get("/v1/subjects/anon-0123456789abcdef/history").json["items"]
    assert [(e["purpose"], e["action"]) for e in history] == [("analytics", "deny"), ("push", "grant")]


@pytest.mark.parametrize("change, field", [
    ({"subject_id": "user-1"}, "subject_id"),
    ({"decisions": []}, "decisions"),
    ({"gpc": "yes"}, "gpc"),
    ({"decisions": [{"purpose": "faceid", "granted": True}]}, "decisions.0.separate"),
])
def test_browser_decisions_are_validated(web, change, field):
    body = {"subject_id": "anon-1", "policy_version": "2026-01",
            "decisions": [{"purpose": "push", "granted": True}], **change}
    response = web.client.post("/v1/public/consents", json=body,
                               headers={"Authorization": f"Bearer {web.publishable}", "Origin": ORIGIN})
    assert response.status_code == 422 and field in response.json["errors"]
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN


def test_snippet_is_served_and_inlines_config_for_a_publishable_key(web, client):
    plain = client.get("/sdk/consent.js")
    assert plain.status_code == 200 and plain.mimetype == "application/javascript"
    assert "max-age" in plain.headers["Cache-Control"]
    inlined = client.get(f"/sdk/consent.js?key={web.publishable}")
    first_line, rest = inlined.get_data(as_text=True).split("\n", 1)
    assert rest.encode() == plain.get_data()
    configs = json.loads(first_line.removeprefix("window.__CONSENT_CONFIG__=").removesuffix(";"))
    assert set(configs) == {"en", "zh-CN"} and configs["zh-CN"]["locale"] == "zh-CN"
    assert client.get(f"/sdk/consent.js?key={web.admin}").get_data() == plain.get_data()
