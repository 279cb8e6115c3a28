"""The change feed (DESIGN.md §9.1, §9.6): every ledger event of a tenant in commit order, from
an opaque cursor; ``wait`` long-polls until something arrives.

A cursor names a feed position of one tenant: base64url of {"v": 1, "p": position, "t": a tag
of the tenant}. A cursor that does not decode, names another tenant's feed or lies beyond the
feed's end is refused with 422. ``next_cursor`` is never null: it is where to resume.
"""

from __future__ import annotations

import hashlib
import threading
import time
from datetime import datetime
from typing import Any

from consent_api.domain.clock import format_ts
from consent_api.errors import Invalid
from consent_api.services.deps import Deps
from consent_api.services.pages import Page, check_limit, decode_cursor, encode_cursor

MAX_WAIT_S = 30.0
POLL_S = 0.1  # how often a waiting request looks again
_waiters: dict[int, threading.BoundedSemaphore] = {}  # per configured limit: the long polls of this process
_gates_lock = threading.Lock()


def tenant_tag(tenant_id: str) -> str:
    return hashlib.sha256(tenant_id.encode("utf-8")).hexdigest()[:8]


def encode_position(tenant_id: str, position: int) -> str:
    return encode_cursor({"v": 1, "p": position, "t": tenant_tag(tenant_id)})


def decode_position(deps: Deps, tenant_id: str, cursor: str | None, field: str = "after") -> int:
    """The position a cursor names; 0 (the feed's start) for none; 422 for one not of this feed."""
    if not cursor:
        return 0
    try:
        value = decode_cursor(cursor)
    except Invalid as exc:
        raise Invalid.field(field, "not a cursor of the change feed") from exc
    if not isinstance(value, dict) or value.get("v") != 1 or set(value) != {"v", "p", "t"}:
        raise Invalid.field(field, "not a cursor of the change feed")
    position = value["p"]
    if not isinstance(position, int) or isinstance(position, bool) or position < 0:
        raise Invalid.field(field, "not a cursor of the change feed")
    if value["t"] != tenant_tag(tenant_id):
        raise Invalid.field(field, "a cursor of another tenant's feed")
    if position > deps.store.feed_head(tenant_id):
        raise Invalid.field(field, "a cursor beyond the end of the feed")
    return position


def _gate(size: int) -> threading.BoundedSemaphore:
    with _gates_lock:
        gate = _waiters.get(size)
        if gate is None:
            gate = _waiters[size] = threading.BoundedSemaphore(size)
        return gate


def check_wait(wait: float | None) -> float:
    if wait is None:
        return 0.0
    if not 0 <= wait <= MAX_WAIT_S:
        raise Invalid.field("wait", f"must be between 0 and {MAX_WAIT_S:g} seconds")
    return wait


def changes(deps: Deps, tenant_id: str, after: str | None, limit: int | None,
            wait: float | None = None) -> Page[dict[str, Any]]:
    """A page of the feed after the cursor; with wait, hold the request until an event comes or
    the wait is over. Long polls past the process's limit answer at once (clients poll again)."""
    limit = check_limit(limit)
    wait = check_wait(wait)
    position = decode_position(deps, tenant_id, after)
    page = deps.store.feed_page(tenant_id, position, limit)
    if not page.events and wait > 0:
        gate = _gate(deps.webhooks.max_waiters)
        if gate.acquire(blocking=False):
            try:
                deadline = time.monotonic() + wait
                while not page.events and time.monotonic() < deadline:
                    time.sleep(min(POLL_S, max(0.0, deadline - time.monotonic())))
                    page = deps.store.feed_page(tenant_id, position, limit)
            finally:
                gate.release()
    return Page(page.events, encode_position(tenant_id, page.end))


def position_at(deps: Deps, tenant_id: str, since: datetime) -> int:
    """The feed position just before the first event recorded at or after since (the head when
    there is none): bisection over commit order, whose recorded times rise with it, reading one
    event per step."""
    low, high = 0, deps.store.feed_head(tenant_id)
    while low < high:
        middle = (low + high) // 2
        page = deps.store.feed_page(tenant_id, middle, 1)
        if not page.events or page.events[0]["recorded_at"] >= format_ts(since):
            high = middle
        else:
            low = middle + 1
    return low
