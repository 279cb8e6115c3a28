"""The SQLiteStore's change feed and webhook tables (store/delivery.py is the port).

The feed position is the events table's rowid: the one writer (the group commit, under the
cross-process write lock) inserts every event, so rowids grow in commit order, and a reader's
snapshot never misses a lower rowid committed later. A page is an index walk on
events_feed (tenant_id, then rowid). Writes the worker makes (enqueue, outcomes, the lease) go
through the group commit like appends, answered without waiting for their fsync (a crash loses
a message and its cursor's move together, or an outcome, which is then sent again); endpoint
edits off the hot path take the write lock directly. Every change to what is owed that the
worker did not make bumps the ``changes`` row of webhook_counters, which delivery_marks reads.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from consent_api.domain.clock import parse_ts
from consent_api.domain.webhooks import PENDING, SUBJECT_ERASED
from consent_api.store.delivery import (
    CHANGES,
    Attempt,
    Counts,
    FeedPage,
    Message,
    Outcome,
    Owed,
    Webhook,
    owed_again,
    redacted,
    scheduled,
)
from consent_api.store.delivery_docs import (
    attempt_doc,
    attempt_from,
    message_doc,
    message_from,
    ts,
    webhook_changes,
    webhook_doc,
    webhook_from,
)
from consent_api.store.sqlite.connection import Database
from consent_api.store.sqlite.rows import dumps, loads

_MOVING = ("cursor", "replay_until")  # columns of their own: the worker moves them conditionally
INSERT_MESSAGE = ("INSERT INTO webhook_messages (tenant_id, webhook_id, id, ord, status, event_at, subject_ref, "
                  "doc) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING")
SAVE_MESSAGE = ("UPDATE webhook_messages SET status = ?, doc = ? WHERE tenant_id = ? AND webhook_id = ? "
                "AND id = ?")
# An outcome keeps the body stored (an erasure may have redacted it while the send was under way)
SAVE_OUTCOME = ("UPDATE webhook_messages SET status = ?, doc = json_set(doc, '$.status', ?, '$.attempts', ?, "
                "'$.next_attempt_at', ?, '$.first_attempt_at', ?) WHERE tenant_id = ? AND webhook_id = ? AND id = ?")
SAVE_ATTEMPT = ("INSERT OR REPLACE INTO webhook_attempts (tenant_id, webhook_id, id, created_at, status, doc) "
                "VALUES (?, ?, ?, ?, ?, ?)")
BUMP = "INSERT INTO webhook_counters (name, n) VALUES (?, 1) ON CONFLICT (name) DO UPDATE SET n = n + 1"


def _attempt_row(a: Attempt) -> tuple:
    return (a.tenant_id, a.webhook_id, a.id, ts(a.created_at), a.status, dumps(attempt_doc(a)))


def _bump(conn: sqlite3.Connection) -> None:
    conn.execute(BUMP, (CHANGES,))


def _webhook(row: Sequence[Any]) -> Webhook:
    cursor, replay_until, doc = row
    return webhook_from({**loads(doc), "cursor": cursor, "replay_until": replay_until})


class DeliveryTables(Database):
    # --- the change feed -----------------------------------------------------------------------
    def feed_page(self, tenant_id: str, after: int, limit: int) -> FeedPage:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT e.id, e.doc, s.subject_id FROM events e LEFT JOIN subjects s "
                "ON s.tenant_id = e.tenant_id AND s.subject_ref = e.subject_ref "
                "WHERE e.tenant_id = ? AND e.id > ? ORDER BY e.id LIMIT ?", (tenant_id, after, limit)).fetchall()
        events = []
        for _, doc, subject_id in rows:
            event = loads(doc)
            event["subject_id"] = subject_id
            events.append(event)
        positions = [row[0] for row in rows]
        return FeedPage(events, positions, positions[-1] if positions else after)

    def feed_head(self, tenant_id: str) -> int:
        # Every tenant's rowids share one sequence: the largest is past all of this tenant's.
        with self._read() as conn:
            return int(conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0])

    # --- webhook endpoints -----------------------------------------------------------------------
    def add_webhook(self, webhook: Webhook) -> None:
        doc = {k: v for k, v in webhook_doc(webhook).items() if k not in _MOVING}
        with self._write() as conn:
            conn.execute("INSERT INTO webhooks (tenant_id, id, status, cursor, replay_until, doc) "
                         "VALUES (?, ?, ?, ?, ?, ?)",
                         (webhook.tenant_id, webhook.id, webhook.status, webhook.cursor, webhook.replay_until,
                          dumps(doc)))
            _bump(conn)

    def get_webhook(self, tenant_id: str, webhook_id: str) -> Webhook | None:
        with self._read() as conn:
            row = conn.execute("SELECT cursor, replay_until, doc FROM webhooks WHERE tenant_id = ? AND id = ?",
                               (tenant_id, webhook_id)).fetchone()
        return _webhook(row) if row else None

    def list_webhooks(self, tenant_id: str, after: str | None, limit: int) -> list[Webhook]:
        with self._read() as conn:
            rows = conn.execute("SELECT cursor, replay_until, doc FROM webhooks WHERE tenant_id = ? AND id > ? "
                                "ORDER BY id LIMIT ?", (tenant_id, after or "", limit)).fetchall()
        return [_webhook(row) for row in rows]

    def count_webhooks(self, tenant_id: str) -> int:
        with self._read() as conn:
            return int(conn.execute("SELECT count(*) FROM webhooks WHERE tenant_id = ?", (tenant_id,)).fetchone()[0])

    def update_webhook(self, tenant_id: str, webhook_id: str, changes: dict[str, Any]) -> Webhook | None:
        changed = webhook_changes(changes)
        with self._write() as conn:
            row = conn.execute("SELECT cursor, replay_until, doc FROM webhooks WHERE tenant_id = ? AND id = ?",
                               (tenant_id, webhook_id)).fetchone()
            if row is None:
                return None
            cursor, replay_until, doc = row
            cursor = changed.pop("cursor", cursor)
            replay_until = changed.pop("replay_until", replay_until)
            merged = {**loads(doc), **changed}
            conn.execute("UPDATE webhooks SET status = ?, cursor = ?, replay_until = ?, doc = ? "
                         "WHERE tenant_id = ? AND id = ?",
                         (merged["status"], cursor, replay_until, dumps(merged), tenant_id, webhook_id))
            _bump(conn)
        return _webhook((cursor, replay_until, dumps(merged)))

    def delete_webhook(self, tenant_id: str, webhook_id: str) -> bool:
        with self._write() as conn:
            gone = conn.execute("DELETE FROM webhooks WHERE tenant_id = ? AND id = ?", (tenant_id, webhook_id))
            conn.execute("DELETE FROM webhook_messages WHERE tenant_id = ? AND webhook_id = ?",
                         (tenant_id, webhook_id))
            _bump(conn)
            return gone.rowcount > 0

    def enabled_webhooks(self) -> list[Webhook]:
        with self._read() as conn:
            rows = conn.execute("SELECT cursor, replay_until, doc FROM webhooks WHERE status = 'enabled' "
                                "ORDER BY tenant_id, id").fetchall()
        return [_webhook(row) for row in rows]

    # --- messages owed ---------------------------------------------------------------------------
    def enqueue_many(self, owed: Sequence[Owed]) -> list[bool]:
        def run(conn: sqlite3.Connection) -> list[bool]:
            done, changed = [], False
            for item in owed:
                conn.execute("SAVEPOINT owed")
                if item.advance is not None:
                    moved = conn.execute(
                        "UPDATE webhooks SET cursor = ?, replay_until = CASE WHEN replay_until <= ? THEN NULL "
                        "ELSE replay_until END WHERE tenant_id = ? AND id = ? AND cursor = ?",
                        (item.advance[1], item.advance[1], item.tenant_id, item.webhook_id, item.advance[0]))
                    if moved.rowcount == 0:
                        conn.execute("RELEASE owed")
                        done.append(False)
                        continue
                else:
                    changed = True
                gone = _erased_refs(conn, item.tenant_id, {m.subject_ref for m in item.messages if m.subject_ref})
                for message in item.messages:
                    if message.subject_ref in gone and (kept := redacted(message)) is not message:
                        message, changed = kept, True
                    _owe(conn, message, item.resend_upto is not None and message.order <= item.resend_upto)
                conn.execute("RELEASE owed")
                done.append(True)
            if changed:
                _bump(conn)
            return done

        # Owed by the feed (with advance): lost with its cursor's move in a crash, so no fsync awaited
        return list(self._transact(run, durable=all(item.advance is None for item in owed)))

    def get_message(self, tenant_id: str, webhook_id: str, message_id: str) -> Message | None:
        with self._read() as conn:
            row = conn.execute("SELECT doc FROM webhook_messages WHERE tenant_id = ? AND webhook_id = ? AND id = ?",
                               (tenant_id, webhook_id, message_id)).fetchone()
        return message_from(loads(row[0])) if row else None

    def pending_messages(self, tenant_id: str, webhook_id: str, limit: int) -> list[Message]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT doc FROM webhook_messages WHERE tenant_id = ? AND webhook_id = ? AND status = 'pending' "
                "ORDER BY ord, id LIMIT ?", (tenant_id, webhook_id, limit)).fetchall()
        return [message_from(loads(doc)) for (doc,) in rows]

    def reschedule(self, tenant_id: str, webhook_id: str, at: datetime, message_id: str | None = None) -> int:
        def run(conn: sqlite3.Connection) -> int:
            rows = conn.execute("SELECT doc FROM webhook_messages WHERE tenant_id = ? AND webhook_id = ? "
                                "AND status = 'pending' AND (? IS NULL OR id = ?)",
                                (tenant_id, webhook_id, message_id, message_id)).fetchall()
            for (doc,) in rows:
                message = message_from(loads(doc))
                _reschedule(conn, message, at)
            _bump(conn)
            return len(rows)

        return int(self._transact(run))

    def record_outcomes(self, outcomes: Sequence[Outcome]) -> None:
        if not outcomes:
            return

        def run(conn: sqlite3.Connection) -> bool:
            conn.executemany(SAVE_ATTEMPT, [_attempt_row(o.attempt) for o in outcomes]
                             + [_attempt_row(o.retry) for o in outcomes if o.retry is not None])
            m = [o.message for o in outcomes]
            conn.executemany(SAVE_OUTCOME, [(x.status, x.status, x.attempts, ts(x.next_attempt_at),
                                             ts(x.first_attempt_at), x.tenant_id, x.webhook_id, x.id) for x in m])
            bodies = [(x.body, x.tenant_id, x.webhook_id, x.id) for x in m if x.type == SUBJECT_ERASED
                      and x.status != PENDING]  # delivered or failed: the subject's id is not kept
            if bodies:
                conn.executemany("UPDATE webhook_messages SET doc = json_set(doc, '$.body', ?) "
                                 "WHERE tenant_id = ? AND webhook_id = ? AND id = ?", bodies)
            counts: dict[str, int] = {}
            for o in outcomes:
                counts[o.attempt.status] = counts.get(o.attempt.status, 0) + 1
            conn.executemany("INSERT INTO webhook_counters (name, n) VALUES (?, ?) "
                             "ON CONFLICT (name) DO UPDATE SET n = n + excluded.n", list(counts.items()))
            return bool(bodies)

        if self._transact(run, durable=False):  # a lost outcome: the message is sent again
            self._forget_log()  # a subject.erased delivered: the id it carried goes from the log too

    def add_attempt(self, attempt: Attempt) -> None:
        self._transact(lambda conn: conn.execute(SAVE_ATTEMPT, _attempt_row(attempt)))

    # --- the delivery log ------------------------------------------------------------------------
    def list_attempts(self, tenant_id: str, webhook_id: str, status: str | None,
                      before: tuple[datetime, str] | None, limit: int) -> list[Attempt]:
        where, args = ["tenant_id = ?", "webhook_id = ?"], [tenant_id, webhook_id]  # type: list[str], list[Any]
        if status is not None:
            where.append("status = ?")
            args.append(status)
        if before is not None:
            where.append("(created_at, id) < (?, ?)")
            args += [ts(before[0]), before[1]]
        with self._read() as conn:
            rows = conn.execute(f"SELECT doc FROM webhook_attempts WHERE {' AND '.join(where)} "
                                "ORDER BY created_at DESC, id DESC LIMIT ?", (*args, limit)).fetchall()
        return [attempt_from(loads(doc)) for (doc,) in rows]

    def get_attempt(self, tenant_id: str, webhook_id: str, attempt_id: str) -> Attempt | None:
        with self._read() as conn:
            row = conn.execute("SELECT doc FROM webhook_attempts WHERE tenant_id = ? AND webhook_id = ? AND id = ?",
                               (tenant_id, webhook_id, attempt_id)).fetchone()
        return attempt_from(loads(row[0])) if row else None

    def export_attempts(self, tenant_id: str, since: datetime | None, until: datetime | None,
                        webhook_id: str | None) -> Iterator[Attempt]:
        where, args = ["tenant_id = ?"], [tenant_id]
        for clause, value in (("created_at >= ?", ts(since)), ("created_at < ?", ts(until)),
                              ("webhook_id = ?", webhook_id)):
            if value is not None:
                where.append(clause)
                args.append(value)
        after: tuple[str, str] = ("", "")
        while True:  # pages by key, so a slow reader holds no snapshot open
            with self._read() as conn:
                rows = conn.execute(f"SELECT created_at, id, doc FROM webhook_attempts WHERE {' AND '.join(where)} "
                                    "AND (created_at, id) > (?, ?) ORDER BY created_at, id LIMIT 1000",
                                    (*args, *after)).fetchall()
            if not rows:
                return
            for _, _, doc in rows:
                yield attempt_from(loads(doc))
            after = (rows[-1][0], rows[-1][1])

    def oldest_pending(self, tenant_id: str, webhook_id: str) -> datetime | None:
        with self._read() as conn:
            row = conn.execute("SELECT min(event_at) FROM webhook_messages WHERE tenant_id = ? AND webhook_id = ? "
                               "AND status = 'pending'", (tenant_id, webhook_id)).fetchone()
        return parse_ts(row[0]) if row and row[0] else None

    def delivery_counts(self) -> Counts:
        with self._read() as conn:
            rows = conn.execute("SELECT name, n FROM webhook_counters WHERE name != ?", (CHANGES,)).fetchall()
        return Counts(dict(rows))

    def delivery_marks(self) -> tuple[Any, int]:
        with self._read() as conn:
            (feed,) = conn.execute("SELECT max(id) FROM events").fetchone()
            row = conn.execute("SELECT n FROM webhook_counters WHERE name = ?", (CHANGES,)).fetchone()
        return feed or 0, row[0] if row else 0

    # --- erasures --------------------------------------------------------------------------------
    def note_erasure(self, tenant_id: str, subject_ref: str, subject_id: str, at: datetime) -> None:
        self._transact(lambda conn: conn.execute(
            "INSERT OR REPLACE INTO erasures (tenant_id, subject_ref, subject_id, at) VALUES (?, ?, ?, ?)",
            (tenant_id, subject_ref, subject_id, ts(at))))

    def erased_subject(self, tenant_id: str, subject_ref: str) -> str | None:
        with self._read() as conn:
            row = conn.execute("SELECT subject_id FROM erasures WHERE tenant_id = ? AND subject_ref = ?",
                               (tenant_id, subject_ref)).fetchone()
        return row[0] if row else None

    def forget_erasures(self, before: datetime) -> int:
        return int(self._transact(lambda conn: conn.execute("DELETE FROM erasures WHERE at < ?",
                                                              (ts(before),)).rowcount))

    def forget_erasure(self, tenant_id: str, subject_ref: str) -> None:
        self._transact(lambda conn: conn.execute("DELETE FROM erasures WHERE tenant_id = ? AND subject_ref = ?",
                                                 (tenant_id, subject_ref)))
        self._forget_log()

    def redact_messages(self, tenant_id: str, subject_ref: str) -> int:
        def run(conn: sqlite3.Connection) -> int:
            rows = conn.execute("SELECT doc FROM webhook_messages WHERE tenant_id = ? AND subject_ref = ?",
                                (tenant_id, subject_ref)).fetchall()
            found = [message_from(loads(doc)) for (doc,) in rows]
            changed = [kept for m in found if (kept := redacted(m)) is not m]
            conn.executemany(SAVE_MESSAGE, [(m.status, dumps(message_doc(m)), m.tenant_id, m.webhook_id, m.id)
                                            for m in changed])
            _bump(conn)
            return len(changed)

        changed = int(self._transact(run))
        if changed:
            self._forget_log()
        return changed

    # --- the lease -------------------------------------------------------------------------------
    def acquire_lease(self, name: str, holder: str, now: datetime, until: datetime) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            taken = conn.execute(
                "INSERT INTO leases (name, holder, until) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE "
                "SET holder = excluded.holder, until = excluded.until WHERE leases.holder = excluded.holder "
                "OR leases.until <= ?", (name, holder, ts(until), ts(now)))
            return taken.rowcount > 0

        return bool(self._transact(run, durable=False))

    def release_lease(self, name: str, holder: str) -> None:
        self._transact(lambda conn: conn.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder)))


def _erased_refs(conn: sqlite3.Connection, tenant_id: str, refs: set[str | None]) -> set[str | None]:
    """Which of these subject_refs no subject has any more (erased)."""
    if not refs:
        return set()
    marks = ",".join("?" * len(refs))
    found = {r for (r,) in conn.execute(f"SELECT subject_ref FROM subjects WHERE tenant_id = ? "
                                        f"AND subject_ref IN ({marks})", (tenant_id, *refs))}
    return refs - found


def _owe(conn: sqlite3.Connection, message: Message, again: bool) -> None:
    """Record a message and its first attempt row; with again, owe a recorded one once more."""
    inserted = conn.execute(INSERT_MESSAGE, (message.tenant_id, message.webhook_id, message.id, message.order,
                                             PENDING, ts(message.event_at), message.subject_ref,
                                             dumps(message_doc(message)))).rowcount
    if inserted:
        conn.execute(SAVE_ATTEMPT, _attempt_row(scheduled(message)))
        return
    if not again:
        return
    row = conn.execute("SELECT doc FROM webhook_messages WHERE tenant_id = ? AND webhook_id = ? AND id = ?",
                       (message.tenant_id, message.webhook_id, message.id)).fetchone()
    owed = owed_again(message_from(loads(row[0])), message)
    if owed is not None:
        conn.execute(SAVE_MESSAGE, (PENDING, dumps(message_doc(owed)), owed.tenant_id, owed.webhook_id, owed.id))
        conn.execute(SAVE_ATTEMPT, _attempt_row(scheduled(owed)))


def _reschedule(conn: sqlite3.Connection, message: Message, at: datetime) -> None:
    moved = replace(message, next_attempt_at=at)
    conn.execute(SAVE_MESSAGE, (moved.status, dumps(message_doc(moved)), moved.tenant_id, moved.webhook_id,
                                moved.id))
    conn.execute(SAVE_ATTEMPT, _attempt_row(scheduled(moved)))
