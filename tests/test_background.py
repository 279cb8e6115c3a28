"""What runs beside the server: the background rounds, and the rights-request tick they run
(in `consent-api worker`, which serve starts, or once through `consent-api tick-requests`)."""

from __future__ import annotations

import json
import threading

from consent_api.background import Every
from consent_api.cli import main
from consent_api.commands.processes import request_ticker
from consent_api.config import Settings, deps_for
from consent_api.domain.clock import FixedClock
from consent_api.services import requests, tenants
from consent_api.services.requests import Origin
from consent_api.store.open import open_store


def test_a_round_runs_at_once_again_after_a_failure_and_stops_when_told():
    calls, second = [], threading.Event()

    def fn():
        calls.append(len(calls))
        if len(calls) == 1:
            raise RuntimeError("the first round fails")
        second.set()

    every = Every("test", 0.01, fn).start()
    assert second.wait(10), "the round after a failure never ran"
    every.stop()
    done = len(calls)
    assert not every._thread.is_alive()
    assert len(calls) == done  # nothing runs after stop()


def test_the_worker_runs_no_ticker_when_it_is_turned_off():
    assert request_ticker(Settings(request_tick_seconds=0)) is None


def test_tick_requests_marks_what_is_overdue_once(tmp_path, monkeypatch, capsys):
    url = f"sqlite:///{tmp_path}/tick.db"
    monkeypatch.setenv("CONSENT_DATABASE_URL", url)
    store = open_store(url)
    deps = deps_for(Settings(database_url=url), store, FixedClock("2026-01-05T02:00:00Z"))
    tenant = tenants.create_tenant(deps, "Shop")[0]
    opened = requests.open_request(deps, tenant.id, "u1", "copy", None,
                                   Origin({"channel": "ios"}, {"type": "self", "id": None, "reason": None}))
    store.close()

    assert main(["tick-requests"]) == 0
    assert json.loads(capsys.readouterr().out) == [
        {"tenant_id": tenant.id, "request_id": opened.id, "notice": "overdue"}]
    assert main(["tick-requests"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_the_worker_s_ticker_marks_what_came_due_in_its_first_round(tmp_path):
    url = f"sqlite:///{tmp_path}/serve.db"
    store = open_store(url)
    deps = deps_for(Settings(database_url=url), store, FixedClock("2026-01-05T02:00:00Z"))
    tenant = tenants.create_tenant(deps, "Shop")[0]
    opened = requests.open_request(deps, tenant.id, "u1", "copy", None,
                                   Origin({"channel": "ios"}, {"type": "self", "id": None, "reason": None}))

    ticker = request_ticker(Settings(database_url=url, request_tick_seconds=3600))
    try:
        for _ in range(200):  # the first round runs at once; wait for it, not for a fixed time
            if requests.get(deps, tenant.id, opened.id).notices:
                break
            threading.Event().wait(0.05)
    finally:
        ticker.stop()
        store.close()
    assert requests.get(deps, tenant.id, opened.id).notices == ("overdue",)
