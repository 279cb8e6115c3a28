"""open_store(url): sqlite:///, mongodb://, mongomock:// to an adapter.

pymongo and mongomock are imported only when such a URL is asked for."""

from __future__ import annotations

import os
from pathlib import Path

from consent_api.store.port import Store


def open_store(url: str) -> Store:
    if url.startswith("sqlite://"):
        from consent_api.store.sqlite import SQLiteStore

        path = url[len("sqlite:///"):] if url.startswith("sqlite:///") else ""
        if not path:
            raise ValueError("a SQLite URL looks like sqlite:///./consent.db or sqlite:////var/lib/consent.db")
        if path != ":memory:":
            _create_private(Path(path))
        return SQLiteStore(path)
    if url.startswith(("mongodb://", "mongodb+srv://")):
        import pymongo

        from consent_api.store.mongo import MongoStore

        client = pymongo.MongoClient(url, w="majority", retryWrites=True,
                                     serverSelectionTimeoutMS=5000, tz_aware=True)
        db = client.get_default_database(default="consent_api")
        return MongoStore(client, db.name)
    if url.startswith("mongomock://"):
        import mongomock

        from consent_api.store.mongo import MongoStore

        return MongoStore(mongomock.MongoClient(), url[len("mongomock://"):].strip("/") or "consent_api")
    raise ValueError(f"unknown store URL {url.split(':', 1)[0]!r}: use sqlite:///, mongodb:// or mongomock://")


def _create_private(path: Path) -> None:
    """The database holds consent evidence and signing keys: readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
        os.close(fd)
