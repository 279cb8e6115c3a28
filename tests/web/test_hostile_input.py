"""Hostile input on every parser of client input: JSON bodies (every operation that takes one,
the public one included), cursors, path ids, query parameters and headers. Each answer is a
4xx application/problem+json, never a 5xx, and nothing is written."""

from __future__ import annotations

import base64
import json

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from consent_api.errors import Invalid
from consent_api.security import strict_json
from consent_api.services.pages import decode_cursor, int_cursor
from tests import builders
from tests.support.api import OPERATOR_TOKEN, bearer

ORIGIN = "https://shop.example"
SURROGATE = "\\ud800"  # as JSON text: the escape of a lone surrogate
DEEP = "[" * 100_000 + "]" * 100_000


def consents_text(collection_point: str = '"settings"', locale: str = '"zh-CN"') -> str:
    return ('{"decisions": [{"purpose": "push", "granted": true}], "policy_version": "2026-01", '
            f'"source": {{"channel": "ios", "collection_point": {collection_point}}}, "locale": {locale}}}')


# (method, path, a valid body as JSON text, the credential: admin | operator | publishable)
BODIES = [
    ("POST", "/v1/tenants", '{"name": "Acme"}', "operator"),
    ("POST", "/v1/keys", '{"name": "k", "scopes": ["consents:read"]}', "admin"),
    ("POST", "/v1/subject-token-keys", '{"alg": "HS256"}', "admin"),
    ("PUT", "/v1/purposes/extra", '{"kind": "marketing", "title": {"en": "Extra"}}', "admin"),
    ("POST", "/v1/policies", '{"version": "v9", "effective_at": "2026-01-01T00:00:00Z", '
                             '"url": "https://example.com/p", "material": false}', "admin"),
    ("PUT", "/v1/vendors/acme", '{"name": "Acme", "company": "Acme Ltd"}', "admin"),
    ("POST", "/v1/subjects/u1/consents", consents_text(), "admin"),
    ("POST", "/v1/subjects/u1/consents/withdraw-all", '{"source": {"channel": "ios"}}', "admin"),
    ("POST", "/v1/subjects/u1/prompts", '{"purposes": ["push"], "source": {"channel": "ios"}}', "admin"),
    ("POST", "/v1/subjects/u1/links", '{"anonymous_subject_id": "anon-1"}', "admin"),
    ("POST", "/v1/checks", '{"purpose": "push", "subject_ids": ["u1"]}', "admin"),
    ("POST", "/v1/subjects/u1/requests", '{"type": "copy", "details": "a copy, please"}', "admin"),
    ("PATCH", "/v1/requests/req_1", '{"status": "rejected", "reason": "no such data"}', "admin"),
    ("PUT", "/v1/settings", '{"request_deadline": {"days": 15, "calendar": "cn_workdays"}}', "admin"),
    ("POST", "/v1/webhooks", '{"url": "https://example.com/hook", "description": "crm"}', "admin"),
    ("PATCH", "/v1/webhooks/wh_1", '{"description": "crm"}', "admin"),
    ("POST", "/v1/webhooks/wh_1/replay", '{"after": "abc"}', "admin"),
    ("POST", "/v1/public/consents", '{"subject_id": "anon-1", "decisions": [{"purpose": "push", '
                                    '"granted": true}], "policy_version": "2026-01"}', "publishable"),
]


def hostile_variants(body: str) -> list[tuple[str, str, str]]:
    """(name, body text, content type) of hostile versions of a valid body."""
    document = json.loads(body)
    first = next(iter(document))
    with_surrogate = json.dumps(document).replace('"' + first + '"', '"' + first + SURROGATE + '"', 1)
    # a lone surrogate in every string value
    everywhere = json.dumps(_map_strings(document, lambda s: s + "\ud800"))
    repeated = body[:-1] + ", " + json.dumps(first) + ": " + json.dumps(document[first]) + "}"
    return [
        ("surrogate in a name", with_surrogate, "application/json"),
        ("surrogate in every string", everywhere, "application/json"),
        ("deep nesting", DEEP, "application/json"),
        ("moderate nesting", '{"a": ' * 500 + "1" + "}" * 500, "application/json"),
        ("NaN", body[:-1] + ', "n": NaN}', "application/json"),
        ("repeated name", repeated, "application/json"),
        ("form content type", body, "application/x-www-form-urlencoded"),
        ("text content type", body, "text/plain"),
        ("no content type", body, ""),
    ]


def _map_strings(value, f):
    if isinstance(value, str):
        return f(value)
    if isinstance(value, list):
        return [_map_strings(v, f) for v in value]
    if isinstance(value, dict):
        return {k: _map_strings(v, f) for k, v in value.items()}
    return value


@pytest.fixture
def world(client, tenant):
    """The app, a tenant with one subject, and the headers of each credential a body needs."""
    tenant.grant("u1", "push")
    publishable = tenant.issue_key(type="publishable", origins=[ORIGIN])
    headers = {"admin": tenant.headers, "operator": bearer(OPERATOR_TOKEN),
               "publishable": {**bearer(publishable), "Origin": ORIGIN}}
    return client, tenant, headers


def ledger(tenant) -> list[str]:
    response = tenant.get("/v1/audit/events")
    assert response.status_code == 200
    return response.get_data(as_text=True).splitlines()


def assert_problem(response, *statuses):
    assert response.status_code in statuses, (response.status_code, response.get_data()[:300])
    assert response.mimetype == "application/problem+json"
    assert json.loads(response.get_data())["status"] == response.status_code


@pytest.mark.parametrize("method, path, body, who", BODIES, ids=[f"{m} {p}" for m, p, _, _ in BODIES])
def test_hostile_bodies_are_refused_and_write_nothing(world, method, path, body, who):
    client, tenant, headers = world
    before = ledger(tenant)
    catalog = tenant.get("/v1/purposes").json
    for name, text, content_type in hostile_variants(body):
        sent = {**headers[who], **({"Content-Type": content_type} if content_type else {})}
        response = client.open(path, method=method, data=text.encode("utf-8", "surrogatepass"), headers=sent)
        expected = (415,) if "content type" in name else (400, 422)
        assert_problem(response, *expected)
    assert ledger(tenant) == before
    assert tenant.get("/v1/purposes").json == catalog


@pytest.mark.parametrize("field, value", [
    ("collection_point", '"point\\u0000"'), ("locale", '"zh\\u0000CN"'), ("locale", '"' + SURROGATE + '"'),
])
def test_nul_and_surrogates_in_decision_fields_are_refused(world, field, value):
    client, tenant, headers = world
    text = consents_text(**{field: value})
    response = client.post("/v1/subjects/u2/consents", data=text.encode(),
                           headers={**headers["admin"], "Content-Type": "application/json"})
    assert_problem(response, 400, 422)
    assert tenant.get("/v1/subjects/u2/consents").status_code == 404


@pytest.mark.parametrize("ids", [["u1", "\ud800"], ["u1\x00"], ["\x00"]])
def test_bulk_checks_refuse_ids_that_are_not_text(world, ids):
    client, tenant, headers = world
    text = json.dumps({"purpose": "push", "subject_ids": ids})
    response = client.post("/v1/checks", data=text.encode(), headers={**headers["admin"], "Content-Type": "application/json"})
    assert_problem(response, 400, 422)


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


CURSORS = [b64(str(2**64).encode()), b64(str(2**63).encode()), b64(b"-1"), b64(b"1.5"), b64(b"true"),
           b64(b'"\\ud800"'), b64(b"\xff\xfe\xfd"), b64(b"NaN"), b64(b"[" * 5000), "A" * 5000, "%%%", "\u00e9"]


@pytest.mark.parametrize("path", ["/v1/subjects/u1/history", "/v1/audiences/push", "/v1/purposes",
                                  "/v1/policies", "/v1/vendors", "/v1/keys", "/v1/audit/events",
                                  "/v1/requests", "/v1/subjects/u1/requests", "/v1/webhooks"])
def test_cursors_the_api_never_issued_are_refused(world, path):
    _, tenant, _ = world
    for cursor in CURSORS:
        assert_problem(tenant.get(path, query={"cursor": cursor}), 422)


def test_change_feed_positions_the_api_never_issued_are_refused(world):
    _, tenant, _ = world
    for cursor in CURSORS:
        assert_problem(tenant.get("/v1/changes", query={"after": cursor}), 422)


def test_every_operation_with_a_body_is_probed():
    import yaml

    from tests.support.openapi_contract import SPEC_PATH

    document = yaml.safe_load(SPEC_PATH.read_text())
    with_body = {(method.upper(), path) for path, item in document["paths"].items()
                 for method, op in item.items() if isinstance(op, dict) and "requestBody" in op}
    probed = {(m, p.replace("/u1/", "/{subject_id}/").replace("/extra", "/{key}").replace("/acme", "/{key}")
               .replace("/req_1", "/{request_id}").replace("/wh_1", "/{webhook_id}"))
              for m, p, _, _ in BODIES}
    assert with_body == probed


@pytest.mark.parametrize("path", ["/v1/subjects/u%00/consents", "/v1/subjects/u%00/history",
                                  "/v1/subjects/u1/consents/p%00", "/v1/audiences/p%00",
                                  "/v1/audit/events?subject_id=u%00", "/v1/audit/events?purpose=p%00",
                                  "/v1/subjects/u1/consents?at=2026-01-01T00:00:00Z%00",
                                  "/v1/subjects/u1/history?limit=1%00", "/v1/public/config?locale=en%00",
                                  "/v1/subjects/%ED%A0%80/consents"])
def test_nul_and_broken_text_in_paths_and_queries_never_fail_the_server(world, path):
    client, tenant, headers = world
    response = client.get(path, headers={**headers["publishable"]} if "public" in path else tenant.headers)
    assert response.status_code < 500
    if response.status_code >= 400:
        assert_problem(response, response.status_code)


def test_idempotency_keys_that_are_not_printable_are_refused(world):
    _, tenant, _ = world
    for key in ("a\x00b", "\x7f", " " * 300, "cl\u00e9", ""):
        response = tenant.record("u3", builders.decision("push"), headers={"Idempotency-Key": key})
        assert_problem(response, 422)
    assert tenant.get("/v1/subjects/u3/consents").status_code == 404


def test_rsa_keys_under_2048_bits_are_refused(tenant):
    private = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    pem = private.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    response = tenant.post("/v1/subject-token-keys", {"alg": "RS256", "public_key": pem})
    assert_problem(response, 422)
    assert "2048" in response.json["errors"]["public_key"][0]
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    assert_problem(tenant.post("/v1/subject-token-keys", {"alg": "RS256", "public_key": jwk}), 422)


# --- the parsers themselves ---------------------------------------------------------------

@pytest.mark.parametrize("text", ['{"a": NaN}', "Infinity", "[-Infinity]", '{"a": 1, "a": 2}',
                                  '{"a": {"b": 1, "b": 1}}', '"\\ud800"', '{"\\udfff": 1}', '["\\ud800\\u0041"]',
                                  "[" * 33 + "]" * 33, DEEP, "", "{", b"\xff", '"\\u00"'])
def test_strict_json_refuses(text):
    with pytest.raises(strict_json.NotStrictJson):
        strict_json.loads(text)


@pytest.mark.parametrize("text, value", [('{"a": [1, 2.5, "x"]}', {"a": [1, 2.5, "x"]}),
                                         ('"\\ud83d\\ude00"', "\U0001f600"), ("[" * 32 + "]" * 32, None)])
def test_strict_json_takes_json(text, value):
    parsed = strict_json.loads(text)
    if value is not None:
        assert parsed == value


def test_int_cursors_stay_within_64_bits():
    assert int_cursor(decode_cursor(b64(b"42"))) == 42
    for raw in (str(2**63).encode(), b"-1", b"true", b"1.0"):
        with pytest.raises(Invalid):
            int_cursor(decode_cursor(b64(raw)))
    with pytest.raises(Invalid):
        decode_cursor("A" * 2000)
