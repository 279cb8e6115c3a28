"""Fixtures that read like a client's actions. Each name means one thing in every folder; what
they return lives in tests/support/ (api.py: Api, Tenant; apps.py: the app's stores and clock;
servers.py: live servers) and tests/builders.py (request bodies and catalogs).

  clock         FixedClock at START, the clock of `app`; a test moves it (clock.advance(hours=48)).
  adapter       the kind of store of the module's apps (tests.support.apps.STORE_URLS): "memory",
                or each of "memory" and "mongomock" in a module marked ON_BOTH_STORES.
  database_url  where `app` keeps its data: a fresh database of `adapter`, or a SQLite file in the
                test's tmp_path for a test marked ON_A_SQLITE_FILE (it reopens the store, reads
                the file, or hands it to the CLI).
  settings      Settings(database_url, admin_token=OPERATOR_TOKEN).
  new_app       new_app(**changes): an app on `clock` with these settings changed (rate_limit="3/minute",
                database_url=...), its store closed after the test.
  app           new_app(): the app under test.
  client        app.test_client(), for tests about raw HTTP (bytes, headers, malformed bodies).
  api           Api over `client`: each call names its token and the status it expects; every
                answer is checked against openapi.yaml.
  operator      the operator token of every app and server the tests start.
  new_tenant    new_tenant(name, purposes=..., roles=...): a Tenant the operator made through `client`.
  tenant        new_tenant(): "Acme" with purpose "push" and policy 2026-01, and its admin key.
  app_tenant    a mobile app's tenant: builders.APP_PURPOSES, policy 2026-01, a key of every role
                (writer, reader, auditor, publishable) and an HS256 subject-token key.
  live_server   (tests/live) a fresh `consent-api serve` with two workers on a SQLite file.

Folders add fixtures of their own, under names of their own: tests/audit (ledger, file_ledger),
tests/browser (shared_server, page_server, make_shop, shop, browser, context, page),
tests/store (store, mongo_store).

A Tenant's own calls go out unchecked against openapi.yaml, as a tenant's backend would make
them; a test that checks answers against the document sends them through `api`.
"""

from __future__ import annotations

import os
from dataclasses import replace

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from consent_api.config import Settings
from consent_api.domain.clock import FixedClock
from consent_api.web.app import create_app
from tests.support.api import OPERATOR_TOKEN, Api, Tenant
from tests.support.apps import START, STORE_URLS, close_app

# Generated examples are checked for what they show, never for how fast a loaded machine ran them.
hypothesis_settings.register_profile("consent_api", deadline=None,
                                     suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.load_profile("consent_api")


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture(scope="module")
def adapter(request) -> str:
    return getattr(request, "param", "memory")


@pytest.fixture
def database_url(request, adapter, tmp_path) -> str:
    kind = "file" if request.node.get_closest_marker("sqlite_file") else adapter
    return STORE_URLS[kind].format(directory=tmp_path)


@pytest.fixture
def settings(database_url) -> Settings:
    return Settings(database_url=database_url, admin_token=OPERATOR_TOKEN)


@pytest.fixture
def new_app(settings, clock):
    made = []

    def make(**changes):
        app = create_app(replace(settings, **changes), clock=clock)
        made.append(app)
        return app

    yield make
    for app in made:
        close_app(app)


@pytest.fixture
def app(new_app):
    return new_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def api(client) -> Api:
    return Api(client, validate=True)


@pytest.fixture
def operator() -> str:
    return OPERATOR_TOKEN


@pytest.fixture
def new_tenant(client):
    return Api(client).new_tenant


@pytest.fixture
def tenant(new_tenant) -> Tenant:
    return new_tenant()


@pytest.fixture
def app_tenant(client) -> Tenant:
    return Api(client).new_app_tenant()


def pytest_sessionfinish(session, exitstatus):
    """In CI every collected test must run: a skip means a tool is missing, and that fails."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if os.environ.get("CONSENT_FAIL_ON_SKIP") == "1" and skipped and exitstatus == 0:
        reporter.write_line(f"FAILED: {len(skipped)} test(s) skipped; CI requires every test to run",
                            red=True)
        session.exitstatus = 1
