"""The hot read answered outside Flask's request cycle (web/fastreads.py): the same bytes as
Flask's answer, the same log line and metrics, one rate-limit count, and every other case left
to Flask."""

from __future__ import annotations

import dataclasses
import logging
from datetime import timedelta

import pytest
from flask import request_started
from werkzeug.test import EnvironBuilder, run_wsgi_app

from consent_api.web.fastreads import FastReads
from consent_api.web.metrics import REQUESTS
from tests.builders import consents, decision
from tests.support.api import Api, bearer
from tests.support.apps import ON_A_SQLITE_FILE

CHECK = "/v1/subjects/u-1/consents/{}"
STATE = "/v1/subjects/u-1/consents"


@pytest.fixture
def world(app, api, app_tenant):
    """The app tenant's user u-1 has granted personalized_push and refused location."""
    api.post("/v1/subjects/u-1/consents", json=consents(decision("personalized_push"), decision("location", False)),
             token=app_tenant.writer, expect=201)
    return app, api, app_tenant


def fast_layer(app) -> FastReads:
    layer = app.wsgi_app.wsgi_app  # DefaultHeaders(FastReads(flask))
    assert isinstance(layer, FastReads)
    return layer


def answer(wsgi, path: str, headers: dict[str, str]):
    environ = EnvironBuilder(path=path, headers=headers).get_environ()
    body, status, response_headers = run_wsgi_app(wsgi, environ)
    return status, sorted(response_headers.items()), b"".join(body)


@pytest.mark.parametrize("path", [CHECK.format("personalized_push"), CHECK.format("location"),
                                  CHECK.format("marketing_sms"), CHECK.format("account"), STATE])
@pytest.mark.parametrize("role", ["reader", "admin", "subject"])
def test_the_fast_answer_is_byte_for_byte_flasks(world, path, role):
    app, _, tenant = world
    layer = fast_layer(app)
    headers = {**tenant.roles("u-1")[role], "X-Request-ID": "req-1"}
    fast = answer(layer, path, headers)
    slow = answer(layer.flask_wsgi, path, headers)
    assert fast[0] == "200 OK"
    assert fast == slow


def test_the_state_of_a_minor_with_archived_purposes_is_the_same_either_way(world):
    app, api, tenant = world
    api.post("/v1/subjects/kid-1/consents", token=tenant.writer, expect=201, json=consents(
        decision("personalized_push"), age_band="under_14", actor={"type": "guardian", "id": "parent-1"}))
    api.delete("/v1/purposes/location", token=tenant.admin, expect=200)
    layer = fast_layer(app)
    for path in ("/v1/subjects/kid-1/consents", "/v1/subjects/kid-1/consents/location", STATE):
        headers = {**bearer(tenant.reader), "X-Request-ID": "req-2"}
        fast = answer(layer, path, headers)
        assert fast == answer(layer.flask_wsgi, path, headers)
        assert fast[0] == "200 OK"
    assert b'"age_band":"under_14"' in answer(layer, "/v1/subjects/kid-1/consents", headers)[2]
    assert b'"archived":true' in answer(layer, "/v1/subjects/kid-1/consents/location", headers)[2]


def test_the_check_skips_flasks_request_cycle_and_errors_do_not(world):
    app, api, tenant = world
    started = []

    def seen(sender, **extra):
        started.append(True)

    request_started.connect(seen, app)
    try:
        api.get(CHECK.format("personalized_push"), token=tenant.reader, expect=200)
        api.get(STATE, token=tenant.reader, expect=200)
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
    (STATE + "?at=2020-01-01T00:00:00Z", "reader", 200),
    (STATE + "/", "reader", 404),
    ("/v1/subjects/nobody/consents", "reader", 404),
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


@ON_A_SQLITE_FILE  # two apps on one store
def test_the_rate_limit_counts_each_request_once_whichever_path_answers(api, new_app, app_tenant):
    api.post("/v1/subjects/u-1/consents", json=consents(decision("personalized_push")),
             token=app_tenant.writer, expect=201)
    api = Api(new_app(rate_limit="3/minute").test_client(), validate=True)  # same store, a limit
    tenant = app_tenant
    api.get("/v1/subjects/nobody/consents/personalized_push", token=tenant.reader, expect=404)  # Flask: 1
    api.get(CHECK.format("personalized_push"), token=tenant.reader, expect=200)  # fast: 2
    api.get(CHECK.format("personalized_push"), token=tenant.reader, expect=200)  # fast: 3
    over = api.get(CHECK.format("personalized_push"), token=tenant.reader, expect=429)
    assert int(over.headers["Retry-After"]) >= 1
    assert over.content_type == "application/problem+json"
    api.get("/v1/purposes", token=tenant.reader, expect=429)  # one window for the credential


def test_a_shared_rate_limit_storage_leaves_the_check_to_flask(new_app):
    app = new_app(rate_limit="100/minute", rate_limit_storage="memory://shared")
    assert not isinstance(app.wsgi_app.wsgi_app, FastReads)
    api = Api(app.test_client(), validate=True)
    tenant = api.new_app_tenant()
    api.post("/v1/subjects/u-1/consents", json=consents(decision("personalized_push")),
             token=tenant.writer, expect=201)
    assert api.get(CHECK.format("personalized_push"), token=tenant.reader).get_json()["allowed"] is True


def test_the_answer_follows_a_withdrawal_at_once(world):
    _, api, tenant = world
    assert api.get(CHECK.format("personalized_push"), token=tenant.reader).get_json()["allowed"] is True
    api.post("/v1/subjects/u-1/consents/withdraw-all", json={"source": {"channel": "ios"}},
             headers=bearer(tenant.writer), expect=200)
    assert api.get(CHECK.format("personalized_push"), token=tenant.reader).get_json()["allowed"] is False


def test_the_fast_path_reads_the_apps_current_dependencies(world):
    """Deps are looked up per request, as the views do: a clock moved 200 days on expires the
    180-day cookie grant on both paths alike."""
    app, api, tenant = world
    api.post("/v1/subjects/u-1/consents", json=consents(decision("analytics_cookies"), channel="web"),
             token=tenant.writer, expect=201)
    deps = app.extensions["consent_api.deps"]
    later = deps.clock() + timedelta(days=200)
    app.extensions["consent_api.deps"] = dataclasses.replace(deps, clock=lambda: later)
    layer = fast_layer(app)
    headers = {**bearer(tenant.reader), "X-Request-ID": "req-3"}
    for path in (CHECK.format("analytics_cookies"), STATE):
        fast = answer(layer, path, headers)
        assert fast == answer(layer.flask_wsgi, path, headers)
    assert b'"status":"expired"' in answer(layer, CHECK.format("analytics_cookies"), headers)[2]


@pytest.mark.parametrize("path, token, status, reads", [
    (CHECK.format("no_such_purpose"), "reader", 404, 1),  # the read raised
    ("/v1/subjects/nobody/consents", "reader", 404, 1),
    (CHECK.format("personalized_push"), "auditor", 403, 0),  # the scope check raised
    (CHECK.format("personalized_push"), "sk_not_a_key", 401, 0),  # authenticating raised
])
def test_flask_goes_on_from_what_the_fast_path_learnt(world, monkeypatch, path, token, status, reads):
    """A request the fast path hands over is authenticated once and read at most once."""
    from consent_api.services import access, consents

    _, api, tenant = world
    calls: list[str] = []
    for module, name in ((access, "authenticate"), (consents, "one_purpose"), (consents, "state")):
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _real=real, _name=name, **k: (calls.append(_name),
                                                                                  _real(*a, **k))[1])
    headers = tenant.roles("u-1").get(token) or bearer(token)
    assert api.client.get(path, headers=headers).status_code == status
    assert calls.count("authenticate") == 1
    assert len(calls) - 1 == reads
