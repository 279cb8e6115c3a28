"""Appending to a subject's ledger, once for every store.

    plan(record)  -> drafts           the service's rules, on the subject's current record
    seal          -> sealed events    numbered and chained after the record's head (ledger.seal)
    check         -> same tenant      every draft carries the tenant it is appended under
    project       -> the new record   the record with the events applied (projection)
    write         -> stored           the store writes them if the head is still the one sealed on

When another writer took the head first, the store says so with the newer head, and the plan
runs again on it. A store that can plan again inside its own transaction (SQLite's group
commit) calls ``reseal`` there instead, so many appends still share one transaction. A store
that writes events one by one (MongoDB) may store a prefix before losing the head; the next
round then leaves out one draft per purpose already written (``remaining``). The retry of an
idempotent request whose first attempt died after writing starts the same way, from the
events that attempt wrote, so nothing is written twice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from consent_api.domain.ledger import new_subject_ref, seal
from consent_api.domain.model import SubjectRecord
from consent_api.domain.projection import apply_events
from consent_api.errors import Unavailable

# Given the subject's current record (a fresh one, with a new subject_ref, for an unknown
# subject), return the draft events to append. Raising writes nothing. It runs again on a newer
# record when a concurrent writer took the head: keep plans free of side effects.
Plan = Callable[[SubjectRecord], list[dict[str, Any]]]

MAX_ATTEMPTS = 64  # rounds of losing the head to concurrent writers before giving up


@dataclass(frozen=True)
class Sealed:
    """Events sealed after ``base``'s head, and ``record``: base with them applied."""

    base: SubjectRecord
    events: list[dict[str, Any]]
    record: SubjectRecord


@dataclass(frozen=True)
class Stored:
    """What a store wrote for one Sealed: the events it stored, in order, and then either the
    record after them (``done``) or, when the head had moved, the newer head to plan on again
    (None: the subject is unknown or erased now). ``answer``: the (status, body) of an
    idempotent request that the store committed together with the events, if it did."""

    events: list[dict[str, Any]]
    record: SubjectRecord | None
    done: bool = True
    answer: tuple[int, str] | None = None


# Plan and seal again on a newer head (None: the subject is gone); raises what the plan raises.
Reseal = Callable[[SubjectRecord | None], Sealed]
Write = Callable[[Sealed, Reseal], Stored]


def new_record(subject_id: str) -> SubjectRecord:
    """The record of a subject before its first event, under a new pseudonym."""
    return SubjectRecord(subject_id=subject_id, subject_ref=new_subject_ref())


def check_tenant(tenant_id: str, drafts: Iterable[dict[str, Any]]) -> None:
    """Refuse drafts that do not carry the tenant they are appended under.

    The chain covers the event's own tenant_id and the stores select events by it, so an event
    filed under another (or no) tenant would silently drop out of its subject's history.
    """
    if any(d.get("tenant_id") != tenant_id for d in drafts):
        raise ValueError(f"every draft event must carry tenant_id {tenant_id!r}")


def remaining(drafts: list[dict[str, Any]], written: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drafts of a re-plan that this append has not written yet.

    Matched by purpose, one written event cancelling one draft, rather than by position: a
    re-plan on a record that already holds our first events may drop them (withdraw-all no
    longer sees those purposes as granted), which would shift every later position.
    """
    if not written:
        return drafts
    done = Counter(e["purpose"] for e in written)
    left = []
    for draft in drafts:
        if done[draft.get("purpose")] > 0:
            done[draft.get("purpose")] -= 1
        else:
            left.append(draft)
    return left


def seal_plan(tenant_id: str, subject_id: str, plan: Plan, head: SubjectRecord | None,
              written: Sequence[dict[str, Any]] = ()) -> Sealed:
    """Plan on head (a fresh record when None), seal after it, check the tenant, project."""
    base = head or new_record(subject_id)
    drafts = remaining(plan(base), written)
    check_tenant(tenant_id, drafts)
    events = seal(drafts, base)
    return Sealed(base, events, apply_events(base, events) if events else base)


def append(tenant_id: str, subject_id: str, plan: Plan, head: SubjectRecord | None, write: Write,
           written: Sequence[dict[str, Any]] = ()) -> Stored:
    """Everything this append wrote (no events when the plan drafted nothing new) and the
    subject's record after it. ``head`` is the current record as the store read it; ``written``
    the events an earlier attempt at the same request already stored (an idempotent retry):
    they count as this append's, and the plan's drafts for their purposes are left out."""
    events: list[dict[str, Any]] = list(written)

    def reseal(newer: SubjectRecord | None) -> Sealed:
        return seal_plan(tenant_id, subject_id, plan, newer, events)

    for _ in range(MAX_ATTEMPTS):
        sealed = reseal(head)
        if not sealed.events:
            return Stored(events, sealed.record)
        stored = write(sealed, reseal)
        events += stored.events
        if stored.done:
            assert stored.record is not None
            return Stored(events, stored.record, answer=stored.answer)
        head = stored.record
    raise Unavailable(f"subject {subject_id}: too many concurrent writers, try again")
