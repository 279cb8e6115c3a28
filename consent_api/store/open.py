"""open_store(url): the one place a database URL becomes a Store adapter.

    sqlite:///relative/path.db    sqlite:////absolute/path.db    sqlite:///:memory:
    mongodb://host/dbname?...     mongodb+srv://cluster/dbname   (database defaults to consent_api)
    mongomock://  or  mongomock://dbname                          (ephemeral, tests only)

Drivers are imported only for the scheme asked for, so SQLite needs no pymongo.
MongoDB clients are tuned by MongoOptions (CONSENT_MONGO_* through Settings); options written
in the URL itself win over them, as pymongo gives URL options precedence.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from consent_api.store.port import Store

DEFAULT_MONGO_DB = "consent_api"
_SQLITE_PREFIX = "sqlite:///"


@dataclass(frozen=True)
class MongoOptions:
    """Connection pool, timeouts and the export read preference of a MongoDB store."""

    max_pool_size: int = 100  # connections per worker process and server
    min_pool_size: int = 0
    server_selection_timeout_ms: int = 5000  # how long a call waits for a usable primary
    connect_timeout_ms: int = 5000
    socket_timeout_ms: int = 30000  # one operation's network wait; 0 = none
    wait_queue_timeout_ms: int = 5000  # waiting for a free pooled connection; 0 = forever
    export_read_preference: str = "secondaryPreferred"

    def client_options(self) -> dict[str, Any]:
        """pymongo.MongoClient keyword arguments: durable writes, retries, these limits."""
        return {
            "w": "majority", "retryWrites": True, "retryReads": True, "tz_aware": True,
            "maxPoolSize": self.max_pool_size, "minPoolSize": self.min_pool_size,
            "serverSelectionTimeoutMS": self.server_selection_timeout_ms,
            "connectTimeoutMS": self.connect_timeout_ms,
            "socketTimeoutMS": self.socket_timeout_ms or None,
            "waitQueueTimeoutMS": self.wait_queue_timeout_ms or None,
            "appname": "consent_api",
        }


def open_store(url: str, mongo: MongoOptions | None = None) -> Store:
    """The adapter for a CONSENT_DATABASE_URL; ValueError for a URL it cannot serve."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "sqlite":
        return _open_sqlite(url)
    if scheme in ("mongodb", "mongodb+srv"):
        return _open_mongodb(url, mongo or MongoOptions())
    if scheme == "mongomock":
        return _open_mongomock(url, mongo or MongoOptions())
    raise ValueError(
        f"unsupported database URL {url!r}: expected sqlite:///path.db, mongodb://…, "
        "mongodb+srv://… or mongomock://"
    )


def _open_sqlite(url: str) -> Store:
    from consent_api.store.sqlite import SQLiteStore

    if not url.startswith(_SQLITE_PREFIX) or len(url) == len(_SQLITE_PREFIX):
        raise ValueError(
            f"SQLite URL {url!r} needs a path: sqlite:///relative.db, sqlite:////abs.db or "
            "sqlite:///:memory:"
        )
    path = url[len(_SQLITE_PREFIX):].split("?", 1)[0]
    if path != ":memory:":
        _create_private(Path(path))
    return SQLiteStore(path)


def _create_private(path: Path) -> None:
    """The database holds consent evidence and signing keys: readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


def _open_mongodb(url: str, options: MongoOptions) -> Store:
    import pymongo

    from consent_api.store.mongo import MongoStore

    client = pymongo.MongoClient(url, **options.client_options())  # connects lazily, in the background
    return MongoStore(client, client.get_default_database(DEFAULT_MONGO_DB).name,
                      export_read_preference=options.export_read_preference)


def _open_mongomock(url: str, options: MongoOptions) -> Store:
    import mongomock

    from consent_api.store.mongo import MongoStore
    from consent_api.store.mongomock_atomic import atomic_client

    parts = urlsplit(url)
    db_name = parts.netloc or parts.path.strip("/") or DEFAULT_MONGO_DB
    return MongoStore(atomic_client(mongomock.MongoClient(tz_aware=True)), db_name,
                      export_read_preference=options.export_read_preference)
