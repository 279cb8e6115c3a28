"""Operations: readiness follows the store, Prometheus metrics, JSON request logs with request ids."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import mongomock
from prometheus_client import REGISTRY
from pymongo.errors import ServerSelectionTimeoutError

from consent_api.store.open import open_store
from consent_api.web.app import create_app
from tests.builders import consents, decision
from tests.store.test_mongo import assert_indexes_exist, unreachable_store
from tests.support.api import OPERATOR_TOKEN, bearer

ROOT = Path(__file__).resolve().parents[2]


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def log_lines(stderr: str) -> list[dict]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def requests_logged(stderr: str) -> list[dict]:
    return [line for line in log_lines(stderr) if line["logger"] == "consent_api.access"]


# --- readiness -------------------------------------------------------------------------------------

def test_ready_on_a_store_that_answers(client):
    assert client.get("/healthz").json == {"status": "ok"}
    assert client.get("/readyz").json == {"status": "ready"}


def test_the_app_starts_on_an_unreachable_mongodb_and_is_not_ready(settings, clock, capsys):
    app = create_app(settings, store=unreachable_store(), clock=clock)
    client = app.test_client()

    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.mimetype == "application/problem+json"
    assert ready.json["type"].endswith("/unavailable") and ready.json["status"] == 503
    assert client.get("/healthz").status_code == 200  # alive: restarting would not help
    assert client.get("/v1/purposes", headers=bearer("sk_whatever")).status_code == 503
    assert client.get("/.well-known/jwks.json").status_code == 503
    warning = [line for line in log_lines(capsys.readouterr().err) if line["level"] == "warning"]
    assert warning[0]["msg"].startswith("store unreachable at start-up")


def test_readiness_follows_the_store_and_indexes_are_made_once_it_answers(settings, clock, monkeypatch):
    store = open_store("mongomock://late")
    down = ServerSelectionTimeoutError("no replica set members match selector \"Primary()\"")

    def unreachable(*args, **kwargs):
        raise down

    monkeypatch.setattr(mongomock.Collection, "create_index", unreachable)
    client = create_app(settings, store=store, clock=clock).test_client()
    assert client.get("/readyz").status_code == 503
    assert client.post("/v1/tenants", json={"name": "Acme"}, headers=bearer(OPERATOR_TOKEN)).status_code == 503

    monkeypatch.undo()  # the replica set has elected a primary

    assert client.get("/readyz").status_code == 200
    assert_indexes_exist(store.db)
    assert client.post("/v1/tenants", json={"name": "Acme"}, headers=bearer(OPERATOR_TOKEN)).status_code == 201
    assert client.get("/.well-known/jwks.json").json["keys"]


def test_readiness_fails_when_the_server_goes_away_after_start(settings, clock, monkeypatch):
    store = open_store("mongomock://gone")
    client = create_app(settings, store=store, clock=clock).test_client()
    assert client.get("/readyz").status_code == 200

    def unreachable(*args, **kwargs):
        raise ServerSelectionTimeoutError("no primary")

    monkeypatch.setattr(store.db, "command", unreachable)
    assert client.get("/readyz").status_code == 503


# --- metrics ----------------------------------------------------------------------------------------

def test_metrics_count_requests_per_route_template_never_per_path(tenant, client):
    route = "/v1/subjects/<subject_id>/consents"
    before = sample("consent_api_http_requests_total", method="GET", route=route, status="200")
    timed = sample("consent_api_http_request_duration_seconds_count", method="GET", route=route)
    tenant.grant("user-secret-17", "push")
    tenant.state("user-secret-17")
    tenant.state("user-secret-17")
    client.get("/nowhere/user-secret-17")

    text = client.get("/metrics").get_data(as_text=True)

    assert sample("consent_api_http_requests_total", method="GET", route=route, status="200") == before + 2
    assert sample("consent_api_http_request_duration_seconds_count", method="GET", route=route) == timed + 2
    assert 'route="<unmatched>",status="404"' in text
    assert "user-secret-17" not in text


def test_metrics_count_decisions_by_purpose_and_action_once_written(tenant):
    tenant.purpose("location", kind="device_permission")

    def count(purpose: str, action: str) -> float:
        return sample("consent_api_decisions_total", purpose=purpose, action=action)

    before = {(p, a): count(p, a) for p in ("push", "location") for a in ("grant", "deny", "withdraw", "prompt")}
    replay = {"Idempotency-Key": "metrics-replay-1"}
    assert tenant.record("m1", decision("push"), decision("location", False), headers=replay).status_code == 201
    assert tenant.record("m1", decision("push"), decision("location", False), headers=replay).status_code == 201
    tenant.refuse("m1", "push")
    assert tenant.post("/v1/subjects/m1/prompts", {"purposes": ["location"],
                                                  "source": {"channel": "ios"}}).status_code == 201
    assert tenant.record("m1", decision("nope")).status_code == 422

    delta = {key: count(*key) - value for key, value in before.items() if count(*key) != value}
    assert delta == {("push", "grant"): 1, ("location", "deny"): 1, ("push", "withdraw"): 1,
                     ("location", "prompt"): 1}


def test_metrics_time_every_store_method(tenant):
    appends = sample("consent_api_store_operation_duration_seconds_count", operation="append")
    lookups = sample("consent_api_store_operation_duration_seconds_count", operation="find_api_key")

    tenant.grant("s1", "push")

    assert sample("consent_api_store_operation_duration_seconds_count", operation="append") == appends + 1
    assert sample("consent_api_store_operation_duration_seconds_count", operation="find_api_key") == lookups + 1


def test_metrics_are_open_without_a_token_and_need_it_when_set(client, new_app):
    opened = client.get("/metrics")
    assert opened.status_code == 200 and opened.mimetype == "text/plain"

    guarded = new_app(metrics_token="scrape-me").test_client()
    assert guarded.get("/metrics").status_code == 401
    wrong = guarded.get("/metrics", headers=bearer("scrape-you"))
    assert wrong.status_code == 401 and wrong.mimetype == "application/problem+json"
    assert guarded.get("/metrics", headers=bearer("scrape-me")).status_code == 200


COUNT_IN_A_WORKER = """
import sys
from flask import Flask
from consent_api.web import metrics
app = Flask("w")
metrics.init_app(app)
app.add_url_rule("/work/<item>", "work", lambda item: "done")
client = app.test_client()
for _ in range(int(sys.argv[1])):
    client.get("/work/x")
"""

SCRAPE = """
from consent_api.web.metrics import exposition
print(exposition()[0].decode())
"""


def test_metrics_add_up_the_samples_of_every_worker_process(tmp_path):
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for count in ("3", "4"):  # two worker processes, as granian runs them
        subprocess.run([sys.executable, "-c", COUNT_IN_A_WORKER, count], env=env, cwd=ROOT, check=True)

    text = subprocess.run([sys.executable, "-c", SCRAPE], env=env, cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout

    assert 'consent_api_http_requests_total{method="GET",route="/work/<item>",status="200"} 7.0' in text
    assert len(list(tmp_path.glob("counter_*.db"))) == 2


# --- logs and request ids -------------------------------------------------------------------------

def test_one_json_line_per_request_with_route_tenant_and_credential_kind(tenant, client, capsys):
    capsys.readouterr()
    tenant.grant("user-secret-17", "push", headers={"X-Request-ID": "req-abc.123:4"})

    [line] = requests_logged(capsys.readouterr().err)
    assert {k: line[k] for k in ("level", "msg", "request_id", "method", "route", "status", "tenant_id",
                                 "credential", "client")} == {
        "level": "info", "msg": "request", "request_id": "req-abc.123:4", "method": "POST",
        "route": "/v1/subjects/<subject_id>/consents", "status": 201, "tenant_id": tenant.id,
        "credential": "api_key", "client": "127.0.0.0/24"}
    assert isinstance(line["duration_ms"], float) and line["ts"].endswith("Z")


def test_the_request_id_is_echoed_or_made_when_missing_or_malformed(client):
    assert client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"] == "abc-123"
    made = client.get("/healthz").headers["X-Request-ID"]
    assert len(made) == 32 and made != client.get("/healthz").headers["X-Request-ID"]
    for bad in ("x" * 129, "has space", "semi;colon", "ünïcode", "<script>", ""):
        echoed = client.get("/healthz", headers={"X-Request-ID": bad}).headers["X-Request-ID"]
        assert echoed != bad and len(echoed) == 32


def test_logs_never_hold_keys_tokens_subject_ids_or_full_addresses(tenant, client, capsys):
    capsys.readouterr()
    path = "/v1/subjects/user-secret-17/consents"
    tenant.post(path, consents(decision("push")), environ_base={"REMOTE_ADDR": "203.0.113.77"})
    tenant.get(path, environ_base={"REMOTE_ADDR": "2001:db8:85a3:8d3:1319:8a2e:370:7348"})
    client.get("/v1/purposes", headers=bearer("sk_not_a_real_key_but_secret"))
    client.post("/v1/tenants", json={"name": "x"}, headers=bearer(OPERATOR_TOKEN))

    err = capsys.readouterr().err
    lines = requests_logged(err)
    assert [line["client"] for line in lines[:2]] == ["203.0.113.0/24", "2001:db8:85a3::/48"]
    assert lines[2]["status"] == 401 and lines[2]["credential"] is None
    assert lines[3]["credential"] == "operator"
    for secret in (tenant.admin, "sk_not_a_real_key_but_secret", OPERATOR_TOKEN, "user-secret-17",
                   "203.0.113.77", "370:7348", "Bearer", "Authorization"):
        assert secret not in err


def test_an_unexpected_error_is_logged_with_its_request_id(app, client, capsys, monkeypatch):
    def broken():
        raise RuntimeError("boom")

    monkeypatch.setattr(app.extensions["consent_api.deps"].store.inner, "ping", broken)
    capsys.readouterr()
    assert client.get("/readyz", headers={"X-Request-ID": "trace-500"}).status_code == 503

    monkeypatch.setattr(app.extensions["consent_api.deps"].keys, "jwks", broken)
    response = client.get("/.well-known/jwks.json", headers={"X-Request-ID": "trace-500b"})
    assert response.status_code == 500 and response.headers["X-Request-ID"] == "trace-500b"
    [error] = [line for line in log_lines(capsys.readouterr().err) if line["level"] == "error"]
    assert error["request_id"] == "trace-500b" and error["error_type"] == "RuntimeError"
    assert "RuntimeError: boom" in error["exc"]


def test_every_metric_the_readme_shows_is_served(tenant, client):
    tenant.grant("r1", "push")
    served = client.get("/metrics").get_data(as_text=True)
    readme = (ROOT / "README.md").read_text()

    shown = set(re.findall(r"^(consent_api_[a-z_]+)\{", readme, flags=re.M))
    assert len(shown) >= 4
    for name in shown:
        assert re.search(rf"^{name}\{{", served, flags=re.M), name


def test_the_production_log_writer_writes_the_access_line_a_record_would(monkeypatch, capsys):
    """Under `serve` the access line skips the LogRecord (requestlog.access_line's direct path);
    its JSON is the JsonFormatter's line for the same request."""
    import logging

    from consent_api.services.access import Principal
    from consent_api.web import requestlog

    parent = logging.getLogger("consent_api")
    monkeypatch.setattr(parent, "level", logging.INFO)
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    who = Principal("api_key", "ten_1", "key_1")

    def logged(extra_handlers: list) -> tuple[dict, bool]:
        writer = requestlog.BackgroundStderr()
        monkeypatch.setattr(parent, "handlers", [writer, *extra_handlers])
        direct = requestlog._direct_handler() is writer
        capsys.readouterr()
        requestlog.access_line("GET", "/v1/subjects/<subject_id>/consents", 200, 0.00123, who,
                               "198.51.100.23", "rid-1")
        writer.close()
        [line] = requests_logged(capsys.readouterr().err)
        return line, direct

    fast, was_direct = logged([])
    slow, was_record = logged([logging.NullHandler()])
    assert was_direct and not was_record
    assert fast.pop("ts").endswith("Z") and slow.pop("ts").endswith("Z")
    assert list(fast.items()) == list(slow.items())
    assert fast == {"level": "info", "logger": "consent_api.access", "msg": "request", "request_id": "rid-1",
                    "method": "GET", "route": "/v1/subjects/<subject_id>/consents", "status": 200,
                    "duration_ms": 1.23, "tenant_id": "ten_1", "credential": "api_key",
                    "client": "198.51.100.0/24"}
