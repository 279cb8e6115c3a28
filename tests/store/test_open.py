"""open_store: a database URL to the adapter that serves it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mongomock
import pymongo
import pytest

from consent_api.store.mongo import MongoStore
from consent_api.store.open import open_store
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
    assert RecordingClient.built == [(url, {"w": "majority", "retryWrites": True,
                                            "serverSelectionTimeoutMS": 5000, "tz_aware": True})]


@pytest.mark.parametrize("url", ["redis://localhost", "sqlite://relative.db", "sqlite:///", "consent.db", ""])
def test_an_unsupported_url_is_refused(url):
    with pytest.raises(ValueError, match="URL"):
        open_store(url)


def test_sqlite_needs_no_mongodb_driver():
    code = ("import sys; from consent_api.store.open import open_store; open_store('sqlite:///:memory:'); "
            "assert 'pymongo' not in sys.modules and 'mongomock' not in sys.modules, sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
