"""The apps under test: how the tests make one, the stores it may have, the clock it starts at."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from consent_api.config import Settings
from consent_api.domain.clock import Clock
from consent_api.web.app import create_app
from tests.support.api import OPERATOR_TOKEN

START = "2026-03-01T08:00:00Z"  # where the apps' fixed clocks start

# The stores an app under test can have (`adapter` in tests/conftest.py): SQLite in memory (the
# default: nothing to write to disk, nothing to clean up), a SQLite file in a fresh directory (for
# what must outlive the app or be read as bytes), or MongoDB on mongomock.
STORE_URLS = {"memory": "sqlite:///:memory:", "file": "sqlite:///{directory}/consent.db",
              "mongomock": "mongomock://consent_tests"}
# For modules whose behaviour must not depend on the adapter.
ON_BOTH_STORES = pytest.mark.parametrize("adapter", ["memory", "mongomock"], indirect=True, scope="module")
# For tests that reopen the store, read its file or hand it to the CLI.
ON_A_SQLITE_FILE = pytest.mark.sqlite_file


def make_app(database_url: str, clock: Clock, **settings: Any) -> Flask:
    """An app as the tests run one: the operator token set, time from ``clock``."""
    return create_app(Settings(database_url=database_url, admin_token=OPERATOR_TOKEN, **settings), clock=clock)


def close_app(app: Flask) -> None:
    app.extensions["consent_api.deps"].store.close()
