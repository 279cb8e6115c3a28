"""The per-day counters on MongoDB: collection daily_counts, one document per (tenant, day),
``{tenant_id, day, c: {purpose: {policy_version: {field: n}}}}``, grown with ``$inc`` upserts.

No multi-document transaction joins them to the events (DESIGN.md §2), so the rule is: whoever
moves a subject's record past events (the writer, or a reader repairing what a dead writer
left) adds what exactly those events count, once, after the move has succeeded
(find_one_and_update / find_one_and_delete return the record as it was, so each event is counted
by the one move that passed it). An event is therefore never counted before it is stored nor
twice; a process that dies between moving the record and the ``$inc`` leaves those events
uncounted, which ``consent-api rebuild-state --check`` reports and ``rebuild-state`` repairs.
All writes of a tenant on one day update one document: MongoDB serialises them there, which
docs/scaling.md weighs against the tenant's write rate.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from consent_api.domain import daily
from consent_api.domain.daily import Tally
from consent_api.store.port import DailyCounts

VALIDITY_TTL_S = 5.0  # how long a process reuses a tenant's validity_days before reading them again


def _escape(name: str) -> str:
    # Field names may not contain "." (a path) or be empty; "%" appears in neither purpose keys
    # nor policy versions (DESIGN.md §3, §8), so it cannot clash.
    return name.replace(".", "%2E") if name else "%"


def _unescape(name: str) -> str:
    return "" if name == "%" else name.replace("%2E", ".")


def increments(rows: Tally) -> dict[str, dict[str, int]]:
    """Per day, the $inc document of rows."""
    out: dict[str, dict[str, int]] = {}
    for (day, purpose, version), counts in rows.items():
        inc = out.setdefault(day, {})
        prefix = f"c.{_escape(purpose)}.{_escape(version)}."
        for name, n in zip(daily.FIELDS, counts, strict=True):
            if n:
                inc[prefix + name] = inc.get(prefix + name, 0) + n
    return {day: inc for day, inc in out.items() if inc}


def add(collection: Any, tenant_id: str, rows: Tally) -> None:
    for day, inc in increments(rows).items():
        collection.update_one({"tenant_id": tenant_id, "day": day}, {"$inc": inc}, upsert=True)


def _rows_of(doc: dict[str, Any], purpose: str | None) -> Tally:
    rows: Tally = {}
    for p, versions in (doc.get("c") or {}).items():
        key = _unescape(p)
        if purpose is not None and key != purpose:
            continue
        for v, counts in versions.items():
            rows[(doc["day"], key, _unescape(v))] = [int(counts.get(name, 0)) for name in daily.FIELDS]
    return rows


def read(collection: Any, tenant_id: str, since: str | None, until: str, purpose: str | None) -> DailyCounts:
    only = {"_id": 0, "day": 1, "c": 1} if purpose is None else {"_id": 0, "day": 1, f"c.{_escape(purpose)}": 1}
    opening: dict[tuple[str, str], int] = {}
    if since is not None:
        for doc in collection.find({"tenant_id": tenant_id, "day": {"$lt": since}}, only):
            for (_, p, v), counts in _rows_of(doc, purpose).items():
                opening[(p, v)] = opening.get((p, v), 0) + counts[daily.ALLOWED]
    rows: Tally = {}
    for doc in collection.find({"tenant_id": tenant_id, "day": {"$gte": since or "", "$lt": until}}, only):
        rows.update(_rows_of(doc, purpose))
    return DailyCounts(opening, rows)


def replace(collection: Any, tenant_id: str, rows: Tally) -> None:
    collection.delete_many({"tenant_id": tenant_id})
    docs: dict[str, dict[str, Any]] = {}
    for (day, purpose, version), counts in daily.nonzero(rows).items():
        doc = docs.setdefault(day, {"tenant_id": tenant_id, "day": day, "c": {}})
        doc["c"].setdefault(_escape(purpose), {})[_escape(version)] = {
            name: n for name, n in zip(daily.FIELDS, counts, strict=True) if n}
    if docs:
        collection.insert_many(list(docs.values()), ordered=False)


class ValidityCache:
    """validity_days of a tenant's purposes, read at most every VALIDITY_TTL_S, and at once when
    an event names a purpose the cached catalog lacks."""

    def __init__(self, load: Callable[[str], dict[str, float | None]]):
        self._load = load
        self._cached: dict[str, tuple[float, dict[str, float | None]]] = {}
        self._lock = threading.Lock()

    def __call__(self, tenant_id: str, purposes: set[str]) -> daily.Validity:
        now = time.monotonic()
        with self._lock:
            hit = self._cached.get(tenant_id)
        if hit is not None and hit[0] > now and purposes <= hit[1].keys():
            return hit[1]
        validity = self._load(tenant_id)
        with self._lock:
            if len(self._cached) > 10_000:
                self._cached.clear()
            self._cached[tenant_id] = (now + VALIDITY_TTL_S, validity)
        return validity
