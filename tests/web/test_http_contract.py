"""Every operation of openapi.yaml, through Flask's test client, with its success answer and its
main error answers; the ``api`` fixture validates each answer against the document."""

from __future__ import annotations

import json

from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from tests.builders import ORIGIN, POLICY, consents, decision
from tests.support.openapi_contract import spec


def documented_successes() -> dict[str, set[int]]:
    return {op["operationId"]: {int(s) for s in op["responses"] if s.startswith("2")}
            for item in spec()["paths"].values() for m, op in item.items() if m != "parameters"}


def test_every_operation_answers_as_documented(api, operator, app_tenant):
    t = app_tenant
    other = api.new_app_tenant("另一个租户")

    # --- tenants and keys ------------------------------------------------------------------
    api.post("/v1/tenants", json={"name": "新租户"}, token=operator, expect=201)
    api.post("/v1/tenants", json={"name": "x"}, expect=401)
    api.post("/v1/tenants", json={"name": "x"}, token=t.admin, expect=403)
    api.post("/v1/tenants", json={"name": ""}, token=operator, expect=422)
    api.post("/v1/tenants", data="{not json", token=operator, expect=400)

    created = api.post("/v1/keys", json={"name": "crm", "scopes": ["consents:read"]}, token=t.admin,
                       expect=201).get_json()
    api.post("/v1/keys", json={"name": "pk", "type": "publishable"}, token=t.admin, expect=422)
    api.post("/v1/keys", json={"name": "x", "scopes": ["consents:read"]}, token=t.reader, expect=403)
    page = api.get("/v1/keys?limit=2", token=t.admin, expect=200).get_json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    rest = api.get(f"/v1/keys?cursor={page['next_cursor']}", token=t.admin, expect=200).get_json()
    assert "key" not in json.dumps(rest["items"][0]).replace('"key_', "")
    api.get("/v1/keys?cursor=%%%", token=t.admin, expect=422)
    api.get(f"/v1/keys/{created['id']}", token=t.admin, expect=200)
    api.get(f"/v1/keys/{created['id']}", token=other.admin, expect=404)
    api.delete(f"/v1/keys/{created['id']}", token=t.admin, expect=200)
    api.delete("/v1/keys/key_nope", token=t.admin, expect=404)
    api.get("/v1/purposes", token=created["key"], expect=401)  # revoked at once

    es = ec.generate_private_key(ec.SECP256R1())
    jwk = ECAlgorithm.to_jwk(es.public_key(), as_dict=True)
    api.post("/v1/subject-token-keys", json={"alg": "ES256", "public_key": jwk}, token=t.admin, expect=201)
    api.post("/v1/subject-token-keys", json={"alg": "HS256", "public_key": "x"}, token=t.admin, expect=422)
    api.post("/v1/subject-token-keys", json={"alg": "none"}, token=t.admin, expect=422)
    stks = api.get("/v1/subject-token-keys", token=t.admin, expect=200).get_json()["items"]
    assert len(stks) == 2 and all("secret" not in k for k in stks)
    spare = api.post("/v1/subject-token-keys", json={"alg": "HS256"}, token=t.admin, expect=201).get_json()
    api.delete(f"/v1/subject-token-keys/{spare['kid']}", token=t.admin, expect=200)
    api.delete(f"/v1/subject-token-keys/{spare['kid']}", token=other.admin, expect=404)

    # --- catalog ---------------------------------------------------------------------------
    body = {"kind": "marketing", "title": {"zh-CN": "营销邮件", "en": "Marketing e-mail"}}
    api.put("/v1/purposes/marketing_email", json=body, token=t.admin, expect=201)
    api.put("/v1/purposes/marketing_email", json={**body, "validity_days": 30.5}, token=t.admin, expect=200)
    api.put("/v1/purposes/marketing_email", json={**body, "colour": "red"}, token=t.admin, expect=422)
    api.put("/v1/purposes/Bad", json=body, token=t.admin, expect=422)
    api.put("/v1/purposes/marketing_email", json=body, token=t.reader, expect=403)
    api.get("/v1/purposes?limit=1", token=t.reader, expect=200)
    api.get("/v1/purposes/marketing_email", token=t.reader, expect=200)
    api.get("/v1/purposes/marketing_email", token=other.reader, expect=404)
    assert api.delete("/v1/purposes/marketing_email", token=t.admin, expect=200).get_json()["archived"]
    api.delete("/v1/purposes/nothing", token=t.admin, expect=404)

    # material, from tomorrow: the decisions below, under POLICY, stay granted
    policy = {"version": "2026-03", "effective_at": "2026-03-02T08:00:00+08:00", "material": True,
              "url": "https://www.example.cn/privacy/2026-03", "summary": {"zh-CN": "新增出境条款"}}
    api.post("/v1/policies", json=policy, token=t.admin, expect=201)
    api.post("/v1/policies", json=policy, token=t.admin, expect=409)
    api.post("/v1/policies", json={"version": "bad version"}, token=t.admin, expect=422)
    api.get("/v1/policies", token=t.reader, expect=200)
    api.get(f"/v1/policies/{POLICY}", token=t.reader, expect=200)
    api.get("/v1/policies/1999", token=t.reader, expect=404)

    vendor = {"name": "个推推送 SDK", "company": "每日互动股份有限公司", "data_collected": ["设备标识符"],
              "purposes": ["personalized_push"], "scenario": "消息推送",
              "privacy_policy_url": "https://docs.getui.com/privacy"}
    api.put("/v1/vendors/getui", json=vendor, token=t.admin, expect=201)
    api.put("/v1/vendors/getui", json=vendor, token=t.admin, expect=200)
    api.put("/v1/vendors/getui", json={**vendor, "privacy_policy_url": "ftp://x"}, token=t.admin, expect=422)
    api.get("/v1/vendors", token=t.reader, expect=200)
    api.get("/v1/vendors/getui", token=t.reader, expect=200)
    api.get("/v1/vendors/getui", token=other.reader, expect=404)

    # --- consents --------------------------------------------------------------------------
    path = "/v1/subjects/u-10001"
    three = consents(decision("personalized_push"), decision("marketing_sms", False),
                     decision("precise_location", separate=True))
    recorded = api.post(f"{path}/consents", json=three, token=t.writer,
                        headers={"Idempotency-Key": "k-1", "User-Agent": "App/1.0"}, expect=201).get_json()
    assert [e["action"] for e in recorded["events"]] == ["grant", "deny", "grant"]
    replay = api.post(f"{path}/consents", json=three, token=t.writer, headers={"Idempotency-Key": "k-1"},
                      expect=201)
    assert replay.headers["Idempotent-Replayed"] == "true"
    api.post(f"{path}/consents", json=consents(decision("location")), token=t.writer,
             headers={"Idempotency-Key": "k-1"}, expect=409)
    api.post(f"{path}/consents", json=consents(decision("precise_location")), token=t.writer,
             expect=422)  # a sensitive purpose granted without separate: true
    api.post(f"{path}/consents", json=consents(decision("nope")), token=t.writer, expect=422)
    api.post(f"{path}/consents", json=consents(decision("account", False)), token=t.writer, expect=422)
    api.post(f"{path}/consents", json=consents(decision("location")), token=t.reader, expect=403)
    api.post(f"{path}/consents", data="[", token=t.writer, expect=400)
    own = t.subject_token("u-10001")
    api.post(f"{path}/consents", json=consents(decision("location"), channel="ios"), token=own, expect=201)
    api.post("/v1/subjects/u-2/consents", json=consents(decision("location")), token=own, expect=403)
    api.post(f"{path}/prompts", json={"purposes": ["marketing_sms"], "source": {"channel": "ios"},
                                      "os_permissions": {"marketing_sms": "not_determined"}},
             token=own, expect=201)
    api.post(f"{path}/prompts", json={"purposes": ["nope"], "source": {"channel": "ios"}}, token=own, expect=422)

    state = api.get(f"{path}/consents", token=t.reader, expect=200).get_json()
    assert state["purposes"]["personalized_push"]["allowed"] is True
    api.get(f"{path}/consents?at={recorded['events'][0]['recorded_at']}", token=own, expect=200)
    api.get(f"{path}/consents?at=yesterday", token=own, expect=422)
    api.get("/v1/subjects/u-unknown/consents", token=t.reader, expect=404)
    api.get(f"{path}/consents", token=other.reader, expect=404)  # another tenant's subject: unknown
    api.get("/v1/subjects/bad%20id/consents", token=t.reader, expect=422)
    one = api.get(f"{path}/consents/personalized_push", token=own, expect=200).get_json()
    assert one["purpose"] == "personalized_push" and one["status"] == "granted"
    api.get(f"{path}/consents/nope", token=t.reader, expect=404)

    history = api.get(f"{path}/history?limit=2", token=t.reader, expect=200).get_json()
    assert [e["seq"] for e in history["items"]] == [1, 2] and history["next_cursor"]
    api.get(f"{path}/history?cursor={history['next_cursor']}", token=own, expect=200)
    api.get(f"{path}/history?limit=0", token=t.reader, expect=422)
    token = api.get(f"{path}/token", token=own, expect=200).get_json()
    assert token["token"].count(".") == 2

    api.post("/v1/checks", json={"purpose": "personalized_push", "subject_ids": ["u-10001", "u-x"]},
             token=t.reader, expect=200)
    api.post("/v1/checks", json={"purpose": "nope", "subject_ids": ["u-1"]}, token=t.reader, expect=422)
    api.post("/v1/checks", json={"purpose": "location", "subject_ids": ["u-1"]}, token=t.publishable,
             headers={"Origin": ORIGIN}, expect=403)
    assert api.get("/v1/audiences/personalized_push", token=t.reader,
                   expect=200).get_json()["items"] == ["u-10001"]
    api.get("/v1/audiences/nope", token=t.reader, expect=404)

    withdrawn = api.post(f"{path}/consents/withdraw-all", json={"source": {"channel": "web"}}, token=t.writer,
                         expect=200).get_json()
    assert {e["action"] for e in withdrawn["events"]} == {"withdraw"}
    api.post("/v1/subjects/u-unknown/consents/withdraw-all", json={"source": {"channel": "web"}},
             token=t.writer, expect=404)
    api.delete(path, token=t.writer, expect=403)
    api.delete(path, token=t.admin, expect=204)
    api.delete(path, token=t.admin, expect=404)
    api.get(f"{path}/consents", token=t.reader, expect=404)

    # --- rights requests -------------------------------------------------------------------------
    opened = api.post("/v1/subjects/u-req/requests", json={"type": "access"}, token=t.writer, expect=201).get_json()
    api.post("/v1/subjects/u-req/requests", json={"type": "nope"}, token=t.writer, expect=422)
    api.get("/v1/subjects/u-req/requests", token=t.subject_token("u-req"), expect=200)
    api.get("/v1/requests?status=open", token=t.reader, expect=200)
    api.get(f"/v1/requests/{opened['id']}", token=t.reader, expect=200)
    api.get(f"/v1/requests/{opened['id']}", token=other.admin, expect=404)
    api.patch(f"/v1/requests/{opened['id']}", json={"status": "completed"}, token=t.admin, expect=200)
    api.patch(f"/v1/requests/{opened['id']}", json={"status": "rejected", "reason": "x"}, token=t.admin, expect=409)
    link = api.post("/v1/subjects/u-req/privacy-center-links", token=t.writer, expect=201).get_json()
    assert "/privacy/open/" in link["url"]
    api.post("/v1/subjects/u-req/privacy-center-links", token=t.reader, expect=403)
    api.get("/v1/settings", token=t.reader, expect=200)
    api.put("/v1/settings", json={"request_deadline": {"days": 15, "calendar": "cn_workdays"}}, token=t.admin,
            expect=200)

    # --- audit -----------------------------------------------------------------------------
    exported = api.get("/v1/audit/events?format=ndjson", token=t.auditor, expect=200)
    assert exported.get_data(as_text=True).count("\n") >= 1
    api.get("/v1/audit/events?format=csv&purpose=personalized_push", token=t.admin, expect=200)
    api.get("/v1/audit/events?colour=red", token=t.auditor, expect=422)
    api.get("/v1/audit/events", token=t.reader, expect=403)
    assert api.get("/v1/audit/manifest", token=t.auditor, expect=200).get_json()["manifest"].count(".") == 2
    api.get("/v1/audit/manifest?cursor=abc", token=t.auditor, expect=422)
    days = api.get("/v1/stats?purpose=personalized_push", token=t.auditor, expect=200).get_json()["days"]
    assert days[-1]["grants"] == 1 and days[-1]["allowed_subjects"] == 0  # granted, then erased
    api.get("/v1/stats?since=2026-03-02&until=2026-03-01", token=t.reader, expect=422)
    api.get("/v1/stats", token=t.writer, expect=403)

    # --- change feed and webhooks -----------------------------------------------------------
    changes = api.get("/v1/changes?limit=2", token=t.reader, expect=200).get_json()
    api.get(f"/v1/changes?after={changes['next_cursor']}&wait=0", token=t.reader, expect=200)
    api.get("/v1/changes?wait=31", token=t.reader, expect=422)
    hook = api.post("/v1/webhooks", json={"url": "https://93.184.216.34/hooks", "types": ["consent.changed"]},
                    token=t.admin, expect=201).get_json()  # a public address: no worker runs here to send
    api.post("/v1/webhooks", json={"url": "https://10.0.0.1/"}, token=t.admin, expect=422)
    api.get("/v1/webhooks", token=t.admin, expect=200)
    hook_path = f"/v1/webhooks/{hook['id']}"
    api.get(hook_path, token=t.admin, expect=200)
    api.get(hook_path, token=other.admin, expect=404)
    api.call("PATCH", hook_path, json={"description": "CRM"}, token=t.admin, expect=200)
    api.post(f"{hook_path}/rotate-secret", token=t.admin, expect=200)
    pending = api.post(f"{hook_path}/test", token=t.admin, expect=202).get_json()
    api.get(f"{hook_path}/deliveries?status=pending", token=t.admin, expect=200)
    api.post(f"{hook_path}/deliveries/{pending['id']}/retry", token=t.admin, expect=202)
    api.post(f"{hook_path}/replay", json={"after": changes["next_cursor"]}, token=t.admin, expect=202)
    api.get("/v1/audit/deliveries", token=t.auditor, expect=200)
    api.delete(hook_path, token=t.admin, expect=204)

    # --- public (browser) --------------------------------------------------------------------
    web = {"Origin": ORIGIN}
    config = api.get("/v1/public/config?locale=zh-CN", token=t.publishable, headers=web, expect=200)
    assert config.get_json()["locale"] == "zh-CN"
    api.get("/v1/public/config", token=t.publishable, headers={"Origin": "https://evil.example"}, expect=403)
    api.get("/v1/public/config", token=t.admin, headers=web, expect=403)
    anon = {"subject_id": "anon-0123456789abcdef", "policy_version": POLICY, "gpc": True,
            "decisions": [{"purpose": "analytics_cookies", "granted": True}]}
    api.post("/v1/public/consents", json=anon, token=t.publishable, headers=web, expect=201)
    api.post("/v1/public/consents", json={**anon, "subject_id": "u-1"}, token=t.publishable, headers=web,
             expect=422)
    linked = api.post(f"{path}-2/links", json={"anonymous_subject_id": anon["subject_id"]}, token=t.writer,
                      expect=200).get_json()
    assert [e["purpose"] for e in linked["events"]] == ["analytics_cookies"]
    api.post(f"{path}-2/links", json={"anonymous_subject_id": "u-1"}, token=t.writer, expect=422)
    api.get("/sdk/consent.js", expect=200)
    api.get(f"/sdk/consent.js?key={t.publishable}", expect=200)
    api.get("/sdk/consent-panel.js?v=0123456789", expect=200)

    # --- ops -------------------------------------------------------------------------------
    api.get("/healthz", expect=200)
    api.get("/readyz", expect=200)
    api.get("/metrics", expect=200)
    assert api.get("/.well-known/jwks.json", expect=200).get_json()["keys"]
    api.get("/v1/openapi.yaml", expect=200)
    api.get("/docs", expect=200)

    seen = {(op, status) for op, status in api.seen if op}
    missing = {op: codes for op, codes in documented_successes().items()
               if not any((op, code) in seen for code in codes)}
    assert missing == {}, "operations whose success answer no test validated"
    errors_seen = {status for _, status in api.seen if status >= 400}
    assert {400, 401, 403, 404, 409, 422} <= errors_seen
