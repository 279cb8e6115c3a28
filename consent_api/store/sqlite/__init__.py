"""SQLiteStore: the embedded default. Stdlib sqlite3, WAL; an acknowledged write is on disk.

A reader's map of the package:

    store.py         SQLiteStore: tenants, credentials, catalog, idempotency, signing keys; caches
    ledger.py        subjects and events: reads, an append's storage step, export, whole chains
    batch.py         what one transaction of the group commit runs: writes and sealed appends
    group_commit.py  the writer and syncer threads, the cross-process write lock, the checkpointer
    connection.py    connections, transactions, durability (fdatasync of the log), cache counters
    rows.py          the event row, the subject row, the chunked SELECT ... IN, written once
    schema.py        version 1 and the migrations to SCHEMA_VERSION

An append is planned and sealed by domain/appending.py in the request's thread, on a snapshot
of the subject's row; the writer thread commits it as it is when the row is still that
snapshot, and has it planned again inside the batch otherwise (batch.py). A subject's ``seq``
has no gaps, events and record change in one transaction, and a caller is answered only once
the log holding its transaction is synced (connection.py).
"""

from consent_api.store.sqlite.connection import PAGE_SIZE, VERSION_CHECK_S, connect
from consent_api.store.sqlite.schema import SCHEMA, SCHEMA_VERSION
from consent_api.store.sqlite.store import PURGE_BATCH, SQLiteStore

__all__ = ["PAGE_SIZE", "PURGE_BATCH", "SCHEMA", "SCHEMA_VERSION", "SQLiteStore", "VERSION_CHECK_S", "connect"]
