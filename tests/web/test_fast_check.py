"""The hot read answered outside Flask's request cycle (web/fastcheck.py): the same bytes as
Flask's answer, the same log line and metrics, one rate-limit count, and every other case left
to Flask."""

from __future__ import annotations

import logging

import pytest
from flask import request_started
from werkzeug.test import EnvironBuilder, run_wsgi_app

from consent_api.web.fastcheck import FastCheck
from consent_api.web.metrics import REQUESTS
from tests.support.world import bearer, decisions
from tests.web.conftest import Api, make_app

CHECK = "/v1/subjects/u-1/consents/{}"


@pytest.fixture
def world():
    app = make_app()
    api = Api(app.test_client())
    tenant = api.tenant()
    api.post("/v1/subjects/u-1/consents", json=decisions(("personalized_push", True), ("location", False)),
             token=tenant.writer, expect=201)
    return app, api, tenant


def fast_layer(app) -> FastCheck:
    layer = app.wsgi_app.wsgi_app  # DefaultHeaders(FastCheck(flask))
    assert isinstance(layer, FastCheck)
    return layer


def answer(wsgi, path: str, headers: dict[str, str]):
    environ = EnvironBuilder(path=path, headers=headers).get_environ()
    body, status, response_headers = run_wsgi_app(wsgi, environ)
    return status, sorted(response_headers.items()), b"".join(body)


@pytest.mark.parametrize("purpose", ["personalized_push", "location", "marketing_sms", "account"])
@pytest.mark.parametrize("role", ["reader", "admin", "subject"])
def test_the_fast_answer_is_byte_for_byte_flasks(world, purpose, role):
    app, _, tenant = world
    layer = fast_layer(app)
    headers = {**tenant.roles("u-1")[role], "X-Request-ID": "req-1"}
    fast = answer(layer, CHECK.format(purpose), headers)
    slow = answer(layer.flask_wsgi, CHECK.format(purpose), headers)
    assert fast[0] == "200 OK"
    assert fast == slow


def test_the_check_skips_flasks_request_cycle_and_errors_do_not(world):
    app, api, tenant = world
    started = []

    def seen(sender, **extra):
        started.append(True)

    request_started.connect(seen, app)
    try:
        api.get(CHECK.format("personalized_push"), token=tenant.reader, expect=200)
        assert started == []
        api.get(CHECK.format("no_such_purpose"), token=tenant.reader, expect=404)
        assert started == [True]
    finally:
        request_started.disconnect(seen, app)


@pytest.mark.parametrize("path, token, status", [
    (CHECK.format("no_such_purpose"), "reader", 404),
    ("/v1/subjects/nobody/consents/personalized_push", "reader", 404),
    (CHECK.format("personalized_push"), "auditor", 403),
    (CHECK.format("personalized_push"), "publishable", 403),
    (CHECK.format("personalized_push"), None, 401),
    (CHECK.format("personalized_push") + "?x=1", "reader", 200),
    ("/v1/subjects/u-2/consents/personalized_push", "subject", 403),
])
def test_what_the_fast_path_does_not_answer_flask_does(world, path, token, status):
    _, api, tenant = world
    headers = tenant.roles("u-1")[token] if token else {}
    response = api.client.get(path, headers=headers)
    assert response.status_code == status
    if status != 200:
        assert response.content_type == "application/problem+json"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_a_bad_key_is_401_problem_json(world):
    _, api, _ = world
    response = api.get(CHECK.format("personalized_push"), token="sk_not_a_key", expect=401)
    assert response.get_json()["status"] == 401


def test_the_access_line_is_the_same_either_way(world, caplog):
    _, api, tenant = world
    with caplog.at_level(logging.INFO, logger="consent_api.access"):
        api.get(CHECK.format("personalized_push"), token=tenant.reader, headers={"X-Request-ID": "r-fast"})
        api.get(CHECK.format("personalized_push") + "?via=flask", token=tenant.reader,
                headers={"X-Request-ID": "r-flask"})
    fields = ("request_id", "method", "route", "status", "tenant_id", "credential", "client")
    fast, slow = [{k: getattr(r, k) for k in fields} for r in caplog.records if r.name == "consent_api.access"]
    assert fast.pop("request_id") == "r-fast" and slow.pop("request_id") == "r-flask"
    assert fast == slow == {"method": "GET", "route": "/v1/subjects/<subject_id>/consents/<purpose>",
                            "status": 200, "tenant_id": tenant.id, "credential": "api_key",
                            "client": "127.0.0.0/24"}


def test_a_new_request_id_is_made_when_none_is_offered(world):
    _, api, tenant = world
    first = api.get(CHECK.format("personalized_push"), token=tenant.reader).headers["X-Request-ID"]
    second = api.get(CHECK.format("personalized_push"), token=tenant.reader).headers["X-Request-ID"]
    assert len(first) == 32 and first != second
    offered = api.get(CHECK.format("personalized_push"), token=tenant.reader,
                      headers={"X-Request-ID": "bad id with spaces"}).headers["X-Request-ID"]
    assert offered != "bad id with spaces"


def test_fast_answers_are_counted_in_metrics(world):
    _, api, tenant = world
    labels = {"method": "GET", "route": "/v1/subjects/<subject_id>/consents/<purpose>", "status": "200"}
    before = REQUESTS.labels(**labels)._value.get()
    for _ in range(3):
        api.get(CHECK.format("location"), token=tenant.reader, expect=200)
    assert REQUESTS.labels(**labels)._value.get() == before + 3


def test_the_rate_limit_counts_each_request_once_whichever_path_answers(tmp_path):
    db = f"sqlite:///{tmp_path}/limits.db"
    setup = Api(make_app(database_url=db).test_client())
    tenant = setup.tenant()
    setup.post("/v1/subjects/u-1/consents", json=decisions(("personalized_push", True)),
               token=tenant.writer, expect=201)
    api = Api(make_app(database_url=db, rate_limit="3/minute").test_client())  # same store, a limit
    api.get("/v1/subjects/nobody/consents/personalized_push", token=tenant.reader, expect=404)  # Flask: 1
    api.get(CHECK.format("personalized_push"), token=tenant.reader, expect=200)  # fast: 2
    api.get(CHECK.format("personalized_push"), token=tenant.reader, expect=200)  # fast: 3
    over = api.get(CHECK.format("personalized_push"), token=tenant.reader, expect=429)
    assert int(over.headers["Retry-After"]) >= 1
    assert over.content_type == "application/problem+json"
    api.get("/v1/purposes", token=tenant.reader, expect=429)  # one window for the credential


def test_a_shared_rate_limit_storage_leaves_the_check_to_flask(tmp_path):
    app = make_app(rate_limit="100/minute", rate_limit_storage="memory://shared")
    assert not isinstance(app.wsgi_app.wsgi_app, FastCheck)
    api = Api(app.test_client())
    tenant = api.tenant()
    api.post("/v1/subjects/u-1/consents", json=decisions(("personalized_push", True)),
             token=tenant.writer, expect=201)
    assert api.get(CHECK.format("personalized_push"), token=tenant.reader).get_json()["allowed"] is True


def test_the_answer_follows_a_withdrawal_at_once(world):
    _, api, tenant = world
    assert api.get(CHECK.format("personalized_push"), token=tenant.reader).get_json()["allowed"] is True
    api.post("/v1/subjects/u-1/consents/withdraw-all", json={"source": {"channel": "ios"}},
             headers=bearer(tenant.writer), expect=200)
    assert api.get(CHECK.format("personalized_push"), token=tenant.reader).get_json()["allowed"] is False
