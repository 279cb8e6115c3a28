"""Cursor pagination shared by every list: opaque cursors, ``limit`` 1..500 (default 100)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from consent_api.errors import Invalid
from consent_api.security import strict_json

T = TypeVar("T")
DEFAULT_LIMIT = 100
MAX_LIMIT = 500
MAX_CURSOR = 1024  # characters; the longest cursor this API issues is well under 300
MAX_INT64 = 2**63 - 1


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(value: Any) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str | None) -> Any:
    """The value a cursor carries, parsed as strictly as a request body; Invalid when it is not
    one this API could have issued (too long, not base64url, not strict JSON)."""
    if not cursor:  # ?cursor= (empty) is how many clients ask for the first page
        return None
    if len(cursor) > MAX_CURSOR:
        raise Invalid.field("cursor", "not a cursor returned by this API")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return strict_json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeError) as exc:
        raise Invalid.field("cursor", "not a cursor returned by this API") from exc


def int_cursor(value: Any, maximum: int = MAX_INT64) -> int:
    """A cursor's value that must be a non-negative integer the stores can hold (64-bit)."""
    if type(value) is not int or not 0 <= value <= maximum:
        raise Invalid.field("cursor", "not a cursor returned by this API")
    return value


def check_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise Invalid.field("limit", f"must be between 1 and {MAX_LIMIT}")
    return limit


def slice_page(items: list[T], cursor: str | None, limit: int | None, key) -> Page[T]:
    """Paginate a small, fully loaded list ordered by key(item) (catalog lists)."""
    limit = check_limit(limit)
    after = decode_cursor(cursor)
    if after is not None and not isinstance(after, str):
        raise Invalid.field("cursor", "not a cursor returned by this API")
    rest = [item for item in items if after is None or key(item) > after]
    page = rest[:limit]
    more = len(rest) > limit
    return Page(page, encode_cursor(key(page[-1])) if more and page else None)


def keyed_page(fetch: Callable[[str | None, int], list[T]], cursor: str | None, limit: int | None,
               key: Callable[[T], str]) -> Page[T]:
    """A page of a store list ordered by a string key: fetch(after, n) answers at most n items
    whose key(item) is after ``after`` (None: from the first)."""
    limit = check_limit(limit)
    after = decode_cursor(cursor)
    if after is not None and not isinstance(after, str):
        raise Invalid.field("cursor", "not a cursor returned by this API")
    found = fetch(after, limit + 1)
    more = len(found) > limit
    return Page(found[:limit], encode_cursor(key(found[limit - 1])) if more else None)
