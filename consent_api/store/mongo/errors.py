"""Driver errors into consent_api's: every public method of the MongoStore answers in ours, and
finds the indexes in place first (``Database._ready``)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Any

from pymongo.errors import (
    BulkWriteError,
    ConnectionFailure,
    DuplicateKeyError,
    PyMongoError,
    WriteConcernError,
)

from consent_api.errors import Conflict, Unavailable


def translated(exc: PyMongoError) -> Exception | None:
    """Our error for a driver error, or None when it is a bug to let through."""
    if isinstance(exc, DuplicateKeyError):
        return Conflict("duplicate key")
    if isinstance(exc, BulkWriteError) and exc.details.get("writeConcernErrors"):
        return Unavailable("MongoDB store: write not acknowledged by a majority")
    if isinstance(exc, (ConnectionFailure, WriteConcernError)) or getattr(exc, "timeout", False):
        return Unavailable(f"MongoDB store: {exc}")
    return None


def wrap_errors(method: Callable, *, ready: bool = False) -> Callable:
    """Translate driver errors raised by a store method (generators included) into ours; with
    ready=True, first make sure the indexes exist (see MongoStore._ready)."""
    if inspect.isgeneratorfunction(method):
        @functools.wraps(method)
        def generator(self: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
            try:
                if ready:
                    self._ready()
                yield from method(self, *args, **kwargs)
            except PyMongoError as exc:
                raise (translated(exc) or exc) from exc
        return generator

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            if ready:
                self._ready()
            return method(self, *args, **kwargs)
        except PyMongoError as exc:
            raise (translated(exc) or exc) from exc
    return wrapper
