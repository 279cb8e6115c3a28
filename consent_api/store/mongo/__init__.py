"""MongoStore: pymongo against MongoDB in production, mongomock in tests.

The write path needs no multi-document transaction, so it runs unchanged on a sharded
cluster (DESIGN.md §2):

1. Read the subject document (the id-to-ref mapping and a cache of the projection). An
   unknown subject is created with a new ``subject_ref`` and ``seq`` 0 before any event is
   written; losing that race (DuplicateKeyError on (tenant_id, subject_id)) means a
   concurrent writer created it first, so we use theirs.
2. ``insert_many(ordered=True)`` the events that domain/appending.py sealed after the record's
   head. The unique index on (tenant_id, subject_ref, seq) lets exactly one writer own each
   seq: on a duplicate the record is caught up from the newer events (the events are the
   truth), and the append plans the drafts not yet written again on that head.
3. Update the subject document only where its ``seq`` is lower than ours, so the update is
   idempotent and never goes backwards.

A writer can die between 2 and 3; every reader therefore checks for events newer than the
document and repairs it before answering. An ``erase`` event found that way finishes the
erasure the dead writer started (DESIGN.md §4: the state and the mapping go, the events stay).

Constructing a MongoStore contacts no server. The indexes in INDEXES are created by
``migrate()`` (``consent-api migrate``, and ``consent-api serve`` before its workers start) and,
failing that, by the first operation that reaches the server, so a store opened while MongoDB
is down answers Unavailable (503, /readyz too) until it is up, then works. Shard keys for a
sharded cluster are in SHARD_KEYS; docs/scaling.md says why.

    database.py   collections, INDEXES, SHARD_KEYS, migrate and shard
    store.py      MongoStore: tenants, credentials, catalog, idempotency, signing keys
    ledger.py     subjects and events: repairing reads, an append's storage step, export, chains
    documents.py  the subject and event documents
    errors.py     driver errors into ours
"""

from consent_api.store.mongo.database import INDEXES, SHARD_KEYS, UNSHARDED
from consent_api.store.mongo.store import MongoStore

__all__ = ["INDEXES", "SHARD_KEYS", "UNSHARDED", "MongoStore"]
