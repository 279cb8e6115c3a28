"""What one transaction of the group commit runs: plain writes (``Write``) and appends sealed in
the requests' threads (``Append``), applied with a few statements for the whole batch, the
per-day counters their events change included (summed over the batch, one upsert per row).

An append was sealed on a snapshot of its subject's row. If the row is still that snapshot at
commit time its rows are written as they are; if another write changed it since (in an earlier
transaction, or earlier in this batch), the append is planned and sealed again on the current
record through its ``reseal`` (domain/appending.py) inside the transaction, and fails alone if
its plan refuses. So every append of a batch shares its transaction and its fsync. An
idempotent request's answer, rendered from the events as sealed (again when they are sealed
again), is written to its idempotency record in the same transaction: a crash leaves either
both or neither.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from consent_api.domain import daily
from consent_api.domain.appending import Reseal, Sealed, Stored
from consent_api.domain.model import SubjectRecord
from consent_api.domain.projection import DECISIONS
from consent_api.store.port import Answer
from consent_api.store.sqlite import daily as daily_rows
from consent_api.store.sqlite.group_commit import Failed
from consent_api.store.sqlite.rows import (
    ANSWER,
    FORGET_ANSWERS,
    FORGET_EVENT_SUBJECT,
    GRANT,
    INSERT_EVENT,
    SAVE_SUBJECT,
    SELECT_SUBJECTS,
    UNGRANT,
    event_row,
    granted,
    record_from,
    select_in,
    subject_row,
)


@dataclass(frozen=True)
class Write:
    """A write the batch runs as it is, inside its transaction."""

    fn: Callable[[sqlite3.Connection], Any]


@dataclass(frozen=True)
class Append:
    """A sealed append with its rows serialised, and the subject row it expects to find."""

    tenant_id: str
    subject_id: str
    erase: bool
    reseal: Reseal
    sealed: Sealed
    expected: tuple | None  # the subject's row (SUBJECT_COLUMNS) it was sealed on; None: no row
    event_rows: list[tuple]
    subject_row: tuple
    grants: dict[str, bool]  # purpose -> granted now, for the purposes these events decided
    validity: daily.Validity  # the tenant's purposes' validity_days, for the per-day counters
    counts: daily.Tally  # what these events add to them
    answer: Answer | None  # an idempotent request's, rendered into answer_row
    answer_row: tuple | None  # rows.ANSWER's arguments

    @classmethod
    def of(cls, tenant_id: str, subject_id: str, sealed: Sealed, reseal: Reseal, erase: bool,
           validity: daily.Validity, answer: Answer | None = None) -> Append:
        """Serialise (and render the answer) in the caller's thread, so the writer thread only
        runs statements; again in the writer's only when the append is sealed again there."""
        base, updated = sealed.base, sealed.record
        answer_row = None
        if answer is not None:
            status, body = answer.render(updated, sealed.events)
            answer_row = (status, body, updated.subject_ref, tenant_id, answer.scope, answer.key)
        return cls(
            tenant_id, subject_id, erase, reseal, sealed,
            expected=subject_row(tenant_id, base)[1:] if base.seq else None,
            event_rows=[event_row(tenant_id, subject_id, e) for e in sealed.events],
            subject_row=subject_row(tenant_id, updated),
            grants=granted(updated, {e["purpose"] for e in sealed.events if e["action"] in DECISIONS}),
            validity=validity,
            counts=daily.tally(base, sealed.events, validity),
            answer=answer, answer_row=answer_row,
        )

    def stored(self) -> Stored:
        return Stored(self.sealed.events, self.sealed.record,
                      answer=self.answer_row[:2] if self.answer_row else None)


class Rows:
    """Rows of a batch's appends, written with one executemany per statement."""

    def __init__(self) -> None:
        self.events: list[tuple] = []
        self.subjects: dict[tuple[str, str], tuple] = {}  # the last record of each subject wins
        self.grants: dict[tuple[str, str, str], bool] = {}  # and the last grant state
        self.counts: dict[str, daily.Tally] = {}  # per tenant, summed over the batch
        self.answers: list[tuple] = []

    def count(self, a: Append) -> None:
        daily.merge(self.counts.setdefault(a.tenant_id, {}), a.counts)

    def add(self, a: Append) -> None:
        self.events.extend(a.event_rows)
        self.subjects[(a.tenant_id, a.subject_id)] = a.subject_row
        for purpose, on in a.grants.items():
            self.grants[(a.tenant_id, purpose, a.subject_id)] = on
        if a.answer_row is not None:
            self.answers.append(a.answer_row)

    def flush(self, conn: sqlite3.Connection) -> None:
        if self.events:
            conn.executemany(INSERT_EVENT, self.events)
        if self.subjects:
            conn.executemany(SAVE_SUBJECT, list(self.subjects.values()))
        conn.executemany(GRANT, [key for key, on in self.grants.items() if on])
        conn.executemany(UNGRANT, [key for key, on in self.grants.items() if not on])
        daily_rows.add(conn, [row for tenant_id, counts in self.counts.items()
                              for row in daily_rows.rows_of(tenant_id, counts)])
        if self.answers:
            conn.executemany(ANSWER, self.answers)
        self.events, self.subjects, self.grants, self.counts, self.answers = [], {}, {}, {}, []


def apply(conn: sqlite3.Connection, payloads: list[Write | Append]) -> list[Any]:
    """The group commit's batch, inside its transaction: one outcome per payload."""
    outcomes: list[Any] = [None] * len(payloads)
    appends: list[int] = []
    for i, payload in enumerate(payloads):
        if isinstance(payload, Append):
            appends.append(i)
            continue
        conn.execute("SAVEPOINT write")
        try:
            outcomes[i] = payload.fn(conn)
        except Exception as exc:
            if not conn.in_transaction:
                raise  # SQLite gave up the whole transaction: the batch fails
            conn.execute("ROLLBACK TO write")
            outcomes[i] = Failed(exc)
        conn.execute("RELEASE write")
    done = apply_appends(conn, [payloads[i] for i in appends])  # type: ignore[misc]
    for i, outcome in zip(appends, done, strict=True):
        outcomes[i] = outcome
    return outcomes


def apply_appends(conn: sqlite3.Connection, appends: list[Append]) -> list[Stored | Failed]:
    """Apply appends in order with a few statements for all of them (module docstring)."""
    rows: dict[tuple[str, str], tuple] = {}
    by_tenant: dict[str, list[str]] = {}
    for a in appends:
        by_tenant.setdefault(a.tenant_id, []).append(a.subject_id)
    for tenant_id, ids in by_tenant.items():
        for row in select_in(conn, SELECT_SUBJECTS, ids, tenant_id):
            rows[(tenant_id, row[0])] = row
    changed: dict[tuple[str, str], SubjectRecord | None] = {}  # by this batch; None: erased
    pending = Rows()
    outcomes: list[Stored | Failed] = []
    for a in appends:
        key = (a.tenant_id, a.subject_id)
        if key in changed or rows.get(key) != a.expected:
            head = changed[key] if key in changed else (record_from(rows[key]) if key in rows else None)
            try:
                a = Append.of(a.tenant_id, a.subject_id, a.reseal(head), a.reseal, a.erase, a.validity, a.answer)
            except Exception as exc:
                outcomes.append(Failed(exc))
                continue
        if a.sealed.events and a.erase:
            pending.flush(conn)  # what came before the erasure lands first
            conn.executemany(INSERT_EVENT, a.event_rows)
            conn.execute(FORGET_EVENT_SUBJECT, (a.tenant_id, a.sealed.base.subject_ref))
            conn.execute("DELETE FROM subjects WHERE tenant_id = ? AND subject_id = ?", key)
            conn.execute("DELETE FROM grants WHERE tenant_id = ? AND subject_id = ?", key)
            for forget, about in zip(FORGET_ANSWERS, (a.sealed.base.subject_ref, a.subject_id), strict=True):
                conn.execute(forget, (a.tenant_id, about))
            changed[key] = None
        elif a.sealed.events:
            pending.add(a)
            changed[key] = a.sealed.record
        elif a.answer_row is not None:  # sealed again on a head that left nothing to write
            pending.answers.append(a.answer_row)
        if a.sealed.events:
            pending.count(a)
        outcomes.append(a.stored())
    pending.flush(conn)
    return outcomes
