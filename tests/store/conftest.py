"""The `store` fixture: every contract test runs once per adapter listed in ALL_STORES."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from consent_api.store.open import open_store
from consent_api.store.port import Store

MONGO_URI = os.environ.get("CONSENT_TEST_MONGO_URI")


@contextmanager
def sqlite_file(tmp_path: Path) -> Iterator[Store]:
    store = open_store(f"sqlite:///{tmp_path / 'consent.db'}")  # absolute: sqlite:////tmp/...
    yield store
    store.close()


@contextmanager
def sqlite_memory(tmp_path: Path) -> Iterator[Store]:
    store = open_store("sqlite:///:memory:")  # one shared connection, writes on the calling thread
    yield store
    store.close()


@contextmanager
def mongomock_db(tmp_path: Path) -> Iterator[Store]:
    store = open_store("mongomock://consent_test")
    yield store
    store.close()


@contextmanager
def mongodb_db(tmp_path: Path) -> Iterator[Store]:
    import pymongo

    from consent_api.store.mongo import MongoStore

    client = pymongo.MongoClient(MONGO_URI, serverSelectionTimeoutMS=5000, tz_aware=True)
    name = f"consent_test_{uuid.uuid4().hex[:12]}"
    store = MongoStore(client, name)
    try:
        yield store
    finally:
        client.drop_database(name)
        store.close()


# A real MongoDB joins only when CONSENT_TEST_MONGO_URI names one (none runs in CI here);
# each test then gets a fresh database, dropped afterwards.
ALL_STORES = [
    pytest.param(sqlite_file, id="sqlite"),
    pytest.param(sqlite_memory, id="sqlite-memory"),
    pytest.param(mongomock_db, id="mongomock"),
    *([pytest.param(mongodb_db, id="mongodb")] if MONGO_URI else []),
]
MONGO_STORES = [p for p in ALL_STORES if not p.id.startswith("sqlite")]


@pytest.fixture(params=ALL_STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with request.param(tmp_path) as opened:
        yield opened


@pytest.fixture(params=MONGO_STORES)
def mongo_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with request.param(tmp_path) as opened:
        yield opened
