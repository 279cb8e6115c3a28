"""mongomock with a server's atomicity, so threads can share the ``mongomock://`` store.

mongomock updates documents in place and checks unique indexes only after inserting, so
threads sharing it see half-applied updates and duplicates that are later rolled back:
races MongoDB never lets happen. MongoDB makes every single-document operation atomic and
an ordered ``insert_many`` a sequence of such inserts that stops at the first error; this
wrapper gives mongomock exactly those guarantees (one lock per client), and no more, so the
write path meets the same interleavings it meets on a server.
"""

from __future__ import annotations

import inspect
import threading
from typing import Any

import mongomock
from mongomock.collection import Cursor
from mongomock.results import InsertManyResult
from pymongo.errors import BulkWriteError


def atomic_client(client: mongomock.MongoClient) -> Any:
    """The client, each of whose operations now runs alone."""
    return _Serialised(client, threading.RLock())


def _wrap(value: Any, lock: threading.RLock) -> Any:
    if isinstance(value, mongomock.Collection):
        return _SerialisedCollection(value, lock)
    if isinstance(value, (mongomock.Database, Cursor)):
        return _Serialised(value, lock)
    return value


class _Serialised:
    def __init__(self, target: Any, lock: threading.RLock):
        self._target = target
        self._lock = lock

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not inspect.isroutine(attr):  # read preferences, for one, are callable values
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return _wrap(attr(*args, **kwargs), self._lock)
        return call

    def __getitem__(self, key: Any) -> Any:
        with self._lock:
            return _wrap(self._target[key], self._lock)

    def __iter__(self) -> Any:
        with self._lock:  # a cursor: run the query at once, as one read
            return iter(list(self._target))


class _SerialisedCollection(_Serialised):
    def insert_many(self, documents: Any, ordered: bool = True, **kwargs: Any) -> InsertManyResult:
        if not ordered:
            return self.__getattr__("insert_many")(documents, ordered=False, **kwargs)
        documents = list(documents)
        ids = []
        for index, document in enumerate(documents):
            try:
                with self._lock:
                    ids.append(self._target.insert_one(document, **kwargs).inserted_id)
            except mongomock.DuplicateKeyError as exc:
                raise BulkWriteError({
                    "writeErrors": [{"index": index, "code": 11000, "errmsg": str(exc), "op": document}],
                    "writeConcernErrors": [], "nInserted": index, "nUpserted": 0, "nMatched": 0,
                    "nModified": 0, "nRemoved": 0, "upserted": [],
                }) from exc
        return InsertManyResult(ids, acknowledged=True)
