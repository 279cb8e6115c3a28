"""SQLite only: a file from before the per-day counters gets them counted from its ledger when
it is opened, in the same transaction as the upgrade."""

from __future__ import annotations

import sqlite3

from consent_api.services import stats
from consent_api.store.sqlite import SQLiteStore
from consent_api.store.sqlite.schema import MIGRATIONS
from tests.store.drafts import append, draft, purpose, tenant

COUNTERS_VERSION = next(m.version for m in MIGRATIONS.values() if "per-day counters" in m.message)
# What each later migration added, taken away again, so a file can be put back as the version
# before the counters left it.
LATER = {
    10: ("DROP INDEX webhook_messages_subject", "ALTER TABLE webhook_messages DROP COLUMN subject_ref"),
    8: ("DROP INDEX idempotency_subject_id", "ALTER TABLE idempotency DROP COLUMN subject_id"),
    9: ("DROP INDEX events_feed", *(f"DROP TABLE {t}" for t in (
        "webhooks", "webhook_messages", "webhook_attempts", "webhook_counters", "erasures", "leases"))),
    next(m.version for m in MIGRATIONS.values() if "carry their subject's id" in m.message):
        ("ALTER TABLE events DROP COLUMN subject_id",),
}


def as_before_the_counters(conn: sqlite3.Connection) -> None:
    assert sorted(LATER) == [v for v in sorted(MIGRATIONS) if v > COUNTERS_VERSION]
    for version in sorted(LATER, reverse=True):
        for statement in LATER[version]:
            conn.execute(statement)
    conn.execute("DROP TABLE daily_counts")
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(COUNTERS_VERSION - 1),))


def test_a_file_from_before_the_counters_gets_its_counters_counted_from_the_ledger(tmp_path):
    path = str(tmp_path / "before-counters.db")
    store = SQLiteStore(path)
    for tenant_id in ("t1", "t2"):
        store.create_tenant(tenant(tenant_id))
        store.put_purpose(tenant_id, purpose("push", validity_days=1.5))
        append(store, tenant_id, "u1", draft("push", tenant_id=tenant_id))
        append(store, tenant_id, "u2", draft("push", "deny", tenant_id=tenant_id, minutes=3000))
    append(store, "t1", "u1", draft(None, "erase", minutes=60), erase=True)
    expected = {t: stats.stored(store, t) for t in ("t1", "t2")}
    store.close()
    with sqlite3.connect(path) as conn:
        as_before_the_counters(conn)

    reopened = SQLiteStore(path)

    assert reopened.migrate()[0].startswith(f"upgraded to schema version {COUNTERS_VERSION}: per-day counters")
    assert {t: stats.stored(reopened, t) for t in ("t1", "t2")} == expected
    assert expected["t1"] != expected["t2"] and all(expected.values())
    reopened.close()
