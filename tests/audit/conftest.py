"""Fixtures for the audit tests: an app on a fixed clock (SQLite in memory, or the MongoDB
adapter on mongomock where a module asks for both), and a file-backed app the CLI can open."""

from __future__ import annotations

from pathlib import Path

import pytest

from consent_api.config import Settings
from consent_api.domain.clock import FixedClock
from consent_api.web.app import create_app
from tests.audit.actions import OPERATOR, Api, seed_ledger

START = "2026-03-02T08:00:00Z"


@pytest.fixture
def store_url(request) -> str:
    return getattr(request, "param", "sqlite:///:memory:")


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def app(clock, store_url):
    return create_app(Settings(database_url=store_url, admin_token=OPERATOR), clock=clock)


@pytest.fixture
def api(app, clock) -> Api:
    return Api(app.test_client(), clock)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "consent.db"


@pytest.fixture
def file_api(db_path, clock, monkeypatch) -> Api:
    """An Api over a SQLite file that the CLI can open too (CONSENT_DATABASE_URL points at it)."""
    url = f"sqlite:///{db_path}"
    monkeypatch.setenv("CONSENT_DATABASE_URL", url)
    app = create_app(Settings(database_url=url, admin_token=OPERATOR), clock=clock)
    return Api(app.test_client(), clock)


@pytest.fixture
def ledger(api) -> Api:
    seed_ledger(api)
    return api


@pytest.fixture
def file_ledger(file_api) -> Api:
    seed_ledger(file_api)
    return file_api
