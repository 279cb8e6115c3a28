"""open_store: a database URL to the adapter that serves it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mongomock
import pymongo
import pytest

from consent_api.config import Settings
from consent_api.store.mongo import MongoStore
from consent_api.store.open import MongoOptions, open_store
from consent_api.store.sqlite import SQLiteStore

ROOT = Path(__file__).resolve().parents[2]


def test_a_relative_sqlite_path_is_relative_to_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    store = open_store("sqlite:///data/consent.db")

    assert isinstance(store, SQLiteStore) and store.path == "data/consent.db"
    assert (tmp_path / "data" / "consent.db").exists()


def test_an_absolute_sqlite_path_takes_four_slashes(tmp_path):
    store = open_store(f"sqlite:///{tmp_path}/abs.db")

    assert store.path == f"{tmp_path}/abs.db" and (tmp_path / "abs.db").exists()


def test_sqlite_in_memory():
    assert open_store("sqlite:///:memory:").path == ":memory:"


def test_mongomock_takes_the_database_name_from_the_url():
    assert open_store("mongomock://audit").db.name == "audit"
    assert open_store("mongomock://").db.name == "consent_api"


class RecordingClient(mongomock.MongoClient):
    """pymongo.MongoClient's stand-in: remembers how it was built."""

    built: list[tuple[str, dict]] = []

    def __init__(self, url: str, **options):
        RecordingClient.built.append((url, options))
        super().__init__(url)


@pytest.mark.parametrize(("url", "db_name"), [
    ("mongodb://db1.example:27017,db2.example:27017/consents?replicaSet=rs0", "consents"),
    ("mongodb://db1.example:27017/?replicaSet=rs0", "consent_api"),
    ("mongodb://db1.example", "consent_api"),
])
def test_mongodb_urls_get_durable_client_options(url, db_name, monkeypatch):
    RecordingClient.built = []
    monkeypatch.setattr(pymongo, "MongoClient", RecordingClient)

    store = open_store(url)

    assert isinstance(store, MongoStore) and store.db.name == db_name
    [(built_url, options)] = RecordingClient.built
    assert built_url == url
    assert {k: options[k] for k in ("w", "retryWrites", "retryReads", "tz_aware")} == {
        "w": "majority", "retryWrites": True, "retryReads": True, "tz_aware": True}
    assert {k: options[k] for k in ("maxPoolSize", "serverSelectionTimeoutMS", "socketTimeoutMS")} == {
        "maxPoolSize": 100, "serverSelectionTimeoutMS": 5000, "socketTimeoutMS": 30000}


def test_pool_and_timeouts_come_from_consent_mongo_settings(monkeypatch):
    RecordingClient.built = []
    monkeypatch.setattr(pymongo, "MongoClient", RecordingClient)
    settings = Settings.from_env({
        "CONSENT_MONGO_MAX_POOL_SIZE": "20", "CONSENT_MONGO_MIN_POOL_SIZE": "2",
        "CONSENT_MONGO_SERVER_SELECTION_TIMEOUT_MS": "1500", "CONSENT_MONGO_CONNECT_TIMEOUT_MS": "700",
        "CONSENT_MONGO_SOCKET_TIMEOUT_MS": "0", "CONSENT_MONGO_WAIT_QUEUE_TIMEOUT_MS": "250",
        "CONSENT_MONGO_EXPORT_READ_PREFERENCE": "nearest"})

    store = open_store("mongodb://db1.example/consents", MongoOptions(**settings.mongo_options()))

    [(_, options)] = RecordingClient.built
    assert {k: options[k] for k in ("maxPoolSize", "minPoolSize", "serverSelectionTimeoutMS",
                                    "connectTimeoutMS", "socketTimeoutMS", "waitQueueTimeoutMS")} == {
        "maxPoolSize": 20, "minPoolSize": 2, "serverSelectionTimeoutMS": 1500, "connectTimeoutMS": 700,
        "socketTimeoutMS": None, "waitQueueTimeoutMS": 250}
    assert store._export_events.read_preference.mongos_mode == "nearest"


def test_settings_and_mongo_options_share_their_defaults():
    assert MongoOptions(**Settings().mongo_options()) == MongoOptions()


@pytest.mark.parametrize("url", ["redis://localhost", "sqlite://relative.db", "sqlite:///", "consent.db", ""])
def test_an_unsupported_url_is_refused(url):
    with pytest.raises(ValueError, match="URL"):
        open_store(url)


def test_sqlite_needs_no_mongodb_driver():
    code = ("import sys; from consent_api.store.open import open_store; open_store('sqlite:///:memory:'); "
            "assert 'pymongo' not in sys.modules and 'mongomock' not in sys.modules, sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
