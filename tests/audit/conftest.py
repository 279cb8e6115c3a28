"""The audit tests' ledgers: seed_ledger's 13 events in a tenant of their own."""

from __future__ import annotations

import pytest

from consent_api.domain.clock import FixedClock
from tests.audit.ledger import seed_ledger
from tests.support.api import Api, Tenant
from tests.support.apps import START, STORE_URLS, close_app, make_app


@pytest.fixture(scope="module")
def ledger(adapter, tmp_path_factory) -> Tenant:
    """Seeded once per module (and adapter) in an app of its own, since the tests that use it
    only read it; a test that writes, or runs the CLI, takes `file_ledger`."""
    clock = FixedClock(START)
    app = make_app(STORE_URLS[adapter].format(directory=tmp_path_factory.mktemp("ledger")), clock)
    yield seed_ledger(Api(app.test_client()).new_tenant(purposes=None), clock)
    close_app(app)


@pytest.fixture
def file_ledger(new_app, clock, tmp_path, monkeypatch) -> Tenant:
    """The same ledger in an app of the test's own on a SQLite file, with CONSENT_DATABASE_URL
    pointing the CLI at it; the test may add to it."""
    url = STORE_URLS["file"].format(directory=tmp_path)
    monkeypatch.setenv("CONSENT_DATABASE_URL", url)
    return seed_ledger(Api(new_app(database_url=url).test_client()).new_tenant(purposes=None), clock)
