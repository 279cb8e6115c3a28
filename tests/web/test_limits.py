"""Limits and hardening at the HTTP edge: body size (413), list sizes (422), rate limits (429 with
Retry-After), security headers on every answer, and no stack traces or secrets in answers or logs."""

from __future__ import annotations

import logging

import pytest

from consent_api.services import catalog
from tests.builders import consents, decision
from tests.support.api import Api
from tests.support.openapi_contract import SECURITY_HEADERS

LIMIT = 1_048_576


def test_a_body_over_the_limit_is_413_problem_json(api, operator):
    response = api.post("/v1/tenants", data=b'{"name": "' + b"x" * LIMIT + b'"}', token=operator, expect=413)
    assert response.get_json()["type"].endswith("/payload-too-large")


def test_werkzeugs_own_413_is_problem_json_too(api, app_tenant):
    """With an Idempotency-Key the body is read (to hash it) before json_body() sees it."""
    response = api.post("/v1/subjects/u-1/consents", data=b"[" + b" " * LIMIT + b"]", token=app_tenant.writer,
                        headers={"Idempotency-Key": "k1"}, expect=413)
    assert response.get_json()["title"] == "Payload too large"


def test_a_smaller_configured_limit_applies(new_app, operator):
    api = Api(new_app(max_body_bytes=64).test_client(), validate=True)
    api.post("/v1/tenants", json={"name": "x" * 100}, token=operator, expect=413)
    api.post("/v1/tenants", json={"name": "ok"}, token=operator, expect=201)


@pytest.mark.parametrize("path, body", [
    ("/v1/checks", {"purpose": "marketing_sms", "subject_ids": [f"u-{i}" for i in range(1001)]}),
    ("/v1/subjects/u-1/prompts", {"purposes": ["location"] * 101, "source": {"channel": "ios"}}),
    ("/v1/subjects/u-1/consents", consents(*(decision(f"p{i}") for i in range(101)))),
])
def test_list_size_limits_are_422_naming_the_field(api, app_tenant, path, body):
    response = api.post(path, json=body, token=app_tenant.admin, expect=422)
    errors = response.get_json()["errors"]
    assert set(errors) & {"subject_ids", "purposes", "decisions"}, errors


def test_limit_over_500_is_422(api, app_tenant):
    api.get("/v1/purposes?limit=501", token=app_tenant.reader, expect=422)
    api.get("/v1/purposes?limit=500", token=app_tenant.reader, expect=200)


def test_401_names_the_bearer_scheme(api):
    response = api.get("/v1/purposes", expect=401)
    assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("method, path, status", [
    ("GET", "/v1/nowhere", 404),
    ("PATCH", "/v1/purposes", 405),
    ("POST", "/v1/tenants", 401),
    ("GET", "/healthz", 200),
    ("GET", "/docs", 200),
])
def test_security_headers_on_every_answer(api, method, path, status):
    response = api.call(method, path, expect=status)
    for name in SECURITY_HEADERS:
        assert response.headers[name]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    if status == 405:
        assert response.headers["Allow"]


def test_an_unexpected_error_is_a_bare_500_and_the_log_keeps_no_token(api, app_tenant, monkeypatch, caplog):
    tenant = app_tenant

    def broken(*args, **kwargs):
        raise RuntimeError("boom: /srv/consent/secret.db is locked")

    monkeypatch.setattr(catalog, "list_purposes", broken)
    with caplog.at_level(logging.DEBUG):
        response = api.get("/v1/purposes", token=tenant.reader)
    assert response.status_code == 500
    assert response.mimetype == "application/problem+json"
    text = response.get_data(as_text=True)
    assert response.get_json() == {
        "type": "https://consent-api.dev/problems/internal", "title": "Internal error", "status": 500,
        "detail": "The server failed to answer; the error has been logged."}
    for leak in ("Traceback", "boom", "secret.db", "RuntimeError", tenant.reader):
        assert leak not in text
    for name in SECURITY_HEADERS:
        assert response.headers[name]
    logged = caplog.text
    assert "RuntimeError" in logged  # the operator can still find out what broke
    assert tenant.reader not in logged and tenant.admin not in logged


def test_over_the_rate_limit_is_429_with_retry_after_per_credential(new_app):
    limited = new_app(rate_limit="12/minute")
    api = Api(limited.test_client(), validate=True)
    tenant = api.new_app_tenant()  # the operator's and the admin key's budgets, not the reader's
    for _ in range(12):
        api.get("/v1/purposes", token=tenant.reader, expect=200)
    response = api.get("/v1/purposes", token=tenant.reader, expect=429)
    retry = int(response.headers["Retry-After"])
    assert 1 <= retry <= 60
    assert response.get_json()["type"].endswith("/rate-limited")
    for name in SECURITY_HEADERS:
        assert response.headers[name]
    # another credential has its own budget; health checks and documents are never limited
    api.get("/v1/purposes", token=tenant.writer, expect=403)
    for _ in range(5):
        api.get("/healthz", expect=200)
        api.get("/v1/openapi.yaml", expect=200)


def test_requests_without_credentials_count_against_the_address(new_app):
    api = Api(new_app(rate_limit="2/minute").test_client(), validate=True)
    api.get("/v1/purposes", expect=401)
    api.get("/v1/purposes", token="sk_unknown", expect=401)
    api.get("/v1/purposes", expect=429)


def test_rate_limit_off_and_a_bad_setting_fails_at_start(new_app):
    api = Api(new_app(rate_limit="off").test_client(), validate=True)
    for _ in range(50):
        api.get("/v1/purposes", expect=401)
    with pytest.raises(ValueError, match="CONSENT_RATE_LIMIT"):
        new_app(rate_limit="lots")


def test_process_windows_count_per_key_and_open_a_new_window_when_one_ends(monkeypatch):
    from limits import parse_many

    from consent_api.web import ratelimit

    now = [1000.0]
    monkeypatch.setattr(ratelimit.time, "monotonic", lambda: now[0])
    windows = ratelimit.ProcessWindows(parse_many("2/second;3/minute"))
    assert windows.hit("a") is None and windows.hit("a") is None
    item, left = windows.hit("a")
    assert (item.amount, left) == (2, 1.0)
    assert windows.hit("b") is None  # another key, its own windows
    now[0] += 1.0  # the second is over, the minute is not
    assert windows.hit("a") is None  # 3rd of the minute
    item, left = windows.hit("a")
    assert (item.amount, left) == (3, 59.0)
