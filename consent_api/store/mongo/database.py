"""The MongoDB database under the MongoStore: its collections, every index (INDEXES), the shard
keys of a sharded cluster (SHARD_KEYS; docs/scaling.md says why), and the migration."""

from __future__ import annotations

import threading
from typing import Any

from pymongo import ASCENDING, HASHED, ReadPreference
from pymongo.errors import OperationFailure
from pymongo.write_concern import WriteConcern

from consent_api.domain.clock import parse_ts
from consent_api.errors import Unavailable
from consent_api.store.mongo import daily
from consent_api.store.port import IDEMPOTENCY_TTL

# Every index of the store, in one place: (collection, keys, options). ensure_indexes()
# creates them idempotently; the names keep a re-run from creating duplicates. A unique index
# on a sharded collection must start with the fields of its shard key (SHARD_KEYS below).
INDEXES: list[tuple[str, list[tuple[str, int]], dict[str, Any]]] = [
    ("tenants", [("id", ASCENDING)], {"name": "id", "unique": True}),
    ("api_keys", [("key_hash", ASCENDING)], {"name": "key_hash", "unique": True}),
    ("api_keys", [("tenant_id", ASCENDING), ("id", ASCENDING)], {"name": "tenant_id_id", "unique": True}),
    # CORS preflights: is an Origin registered on any live publishable key?
    ("api_keys", [("origins", ASCENDING)], {"name": "origins"}),
    ("subject_token_keys", [("kid", ASCENDING)], {"name": "kid", "unique": True}),
    ("subject_token_keys", [("tenant_id", ASCENDING), ("created_at", ASCENDING)],
     {"name": "tenant_id_created_at"}),
    ("purposes", [("tenant_id", ASCENDING), ("key", ASCENDING)], {"name": "tenant_id_key", "unique": True}),
    ("policies", [("tenant_id", ASCENDING), ("version", ASCENDING)],
     {"name": "tenant_id_version", "unique": True}),
    ("vendors", [("tenant_id", ASCENDING), ("key", ASCENDING)], {"name": "tenant_id_key", "unique": True}),
    ("subjects", [("tenant_id", ASCENDING), ("subject_id", ASCENDING)],
     {"name": "tenant_id_subject_id", "unique": True}),
    # Not unique: subjects are sharded on subject_id, and MongoDB enforces uniqueness only for
    # indexes prefixed by the shard key. subject_ref is 128 random bits, so it never repeats.
    ("subjects", [("tenant_id", ASCENDING), ("subject_ref", ASCENDING)],
     {"name": "tenant_id_subject_ref"}),
    # audiences: subjects whose last decision on a purpose is a grant, in subject_id order
    ("subjects", [("tenant_id", ASCENDING), ("granted", ASCENDING), ("subject_id", ASCENDING)],
     {"name": "tenant_id_granted_subject_id"}),
    ("events", [("tenant_id", ASCENDING), ("subject_ref", ASCENDING), ("seq", ASCENDING)],
     {"name": "tenant_id_subject_ref_seq", "unique": True}),
    ("events", [("tenant_id", ASCENDING), ("recorded_at", ASCENDING), ("seq", ASCENDING),
                ("event_id", ASCENDING)], {"name": "export"}),
    ("idempotency", [("tenant_id", ASCENDING), ("scope", ASCENDING), ("key", ASCENDING)],
     {"name": "tenant_id_scope_key", "unique": True}),
    ("idempotency", [("tenant_id", ASCENDING), ("subject_ref", ASCENDING)],
     {"name": "tenant_id_subject_ref"}),
    # an erasure deletes the records of requests about the subject (their scope or answer may
    # hold its id) by subject_id too: an answer that wrote nothing names no subject_ref
    ("idempotency", [("tenant_id", ASCENDING), ("subject_id", ASCENDING)],
     {"name": "tenant_id_subject_id", "partialFilterExpression": {"subject_id": {"$type": "string"}}}),
    # MongoDB's TTL monitor deletes a record once expires_at has passed (it runs every 60 s;
    # claim_idempotency_key ignores expired records it finds before then).
    ("idempotency", [("expires_at", ASCENDING)], {"name": "expires_at", "expireAfterSeconds": 0}),
    ("signing_keys", [("kid", ASCENDING)], {"name": "kid", "unique": True}),
    # Page sessions and one-time links: found by the hash of their secret, ended per subject or
    # per key, removed by the TTL monitor once past their absolute end (``expires``, a date).
    ("page_sessions", [("token_hash", ASCENDING)], {"name": "token_hash", "unique": True}),
    ("page_sessions", [("tenant_id", ASCENDING), ("subject_id", ASCENDING)], {"name": "tenant_id_subject_id"}),
    ("page_sessions", [("tenant_id", ASCENDING), ("key_id", ASCENDING)], {"name": "tenant_id_key_id"}),
    ("page_sessions", [("expires", ASCENDING)], {"name": "expires", "expireAfterSeconds": 0}),
    ("link_codes", [("code_hash", ASCENDING)], {"name": "code_hash", "unique": True}),
    ("link_codes", [("expires", ASCENDING)], {"name": "expires", "expireAfterSeconds": 0}),
    # Rights requests: one tenant's queue by deadline, a subject's own, and the tenants' settings.
    ("requests", [("tenant_id", ASCENDING), ("id", ASCENDING)], {"name": "tenant_id_id", "unique": True}),
    ("requests", [("tenant_id", ASCENDING), ("due_at", ASCENDING), ("id", ASCENDING)],
     {"name": "tenant_id_due_at_id"}),
    ("requests", [("tenant_id", ASCENDING), ("subject_id", ASCENDING)], {"name": "tenant_id_subject_id"}),
    ("tenant_settings", [("tenant_id", ASCENDING)], {"name": "tenant_id", "unique": True}),
    # GET /v1/stats: a tenant's days in order (store/mongo/daily.py)
    ("daily_counts", [("tenant_id", ASCENDING), ("day", ASCENDING)], {"name": "tenant_id_day", "unique": True}),
    # the change feed and webhooks (delivery.py)
    ("events", [("tenant_id", ASCENDING), ("feed_seq", ASCENDING)], {"name": "feed"}),
    ("feed_gaps", [("tenant_id", ASCENDING), ("n", ASCENDING)], {"name": "tenant_id_n", "unique": True}),
    ("webhooks", [("tenant_id", ASCENDING), ("id", ASCENDING)], {"name": "tenant_id_id", "unique": True}),
    ("webhooks", [("status", ASCENDING)], {"name": "status"}),
    ("webhook_messages", [("tenant_id", ASCENDING), ("webhook_id", ASCENDING), ("id", ASCENDING)],
     {"name": "tenant_id_webhook_id_id", "unique": True}),
    ("webhook_messages", [("tenant_id", ASCENDING), ("webhook_id", ASCENDING), ("status", ASCENDING),
                          ("order", ASCENDING), ("id", ASCENDING)], {"name": "pending"}),
    ("webhook_attempts", [("tenant_id", ASCENDING), ("webhook_id", ASCENDING), ("id", ASCENDING)],
     {"name": "tenant_id_webhook_id_id", "unique": True}),
    ("webhook_attempts", [("tenant_id", ASCENDING), ("webhook_id", ASCENDING), ("created_at", ASCENDING),
                          ("id", ASCENDING)], {"name": "log"}),
    ("webhook_attempts", [("tenant_id", ASCENDING), ("created_at", ASCENDING), ("id", ASCENDING)],
     {"name": "export"}),
    ("webhook_messages", [("tenant_id", ASCENDING), ("subject_ref", ASCENDING)],
     {"name": "tenant_id_subject_ref", "partialFilterExpression": {"subject_ref": {"$type": "string"}}}),
    ("erasures", [("tenant_id", ASCENDING), ("subject_ref", ASCENDING)],
     {"name": "tenant_id_subject_ref", "unique": True}),
    ("erasures", [("at", ASCENDING)], {"name": "at"}),
]

# Shard keys for a sharded cluster (`consent-api migrate --shard`); docs/scaling.md says why.
# Every hot query names the whole key, so it reaches one shard. subject_ref and subject_id are
# hashed: the first is random anyway, the second is the client's and may grow monotonically.
SHARD_KEYS: dict[str, list[tuple[str, Any]]] = {
    "events": [("tenant_id", ASCENDING), ("subject_ref", HASHED)],
    "subjects": [("tenant_id", ASCENDING), ("subject_id", HASHED)],
    "idempotency": [("tenant_id", ASCENDING), ("scope", ASCENDING), ("key", HASHED)],
}
# Small collections, read on every request or by key hash alone: they stay unsharded on the
# database's primary shard (api_keys needs two unique indexes, which sharding would forbid).
UNSHARDED = ("tenants", "api_keys", "subject_token_keys", "purposes", "policies", "vendors",
             "signing_keys", "page_sessions", "link_codes", "requests", "tenant_settings", "daily_counts",
             "feed_gaps", "webhooks", "webhook_messages", "webhook_attempts", "erasures")
# Found by _id alone, a document per tenant or per name, so neither indexed nor sharded:
# feed_counters, webhook_counters, leases (delivery.py).

READ_PREFERENCES = {
    "primary": ReadPreference.PRIMARY,
    "primaryPreferred": ReadPreference.PRIMARY_PREFERRED,
    "secondary": ReadPreference.SECONDARY,
    "secondaryPreferred": ReadPreference.SECONDARY_PREFERRED,
    "nearest": ReadPreference.NEAREST,
}


def changed_definition(exc: OperationFailure) -> bool:
    """An index of that name exists with other keys or options (IndexOptionsConflict/KeySpecsConflict)."""
    return exc.code in (85, 86) or "already exists with different options" in str(exc)


def spec(keys: list[tuple[str, Any]]) -> str:
    return ", ".join(f"{name}: {direction}" for name, direction in keys)


class Database:
    """One MongoDB database's collections, indexes and migrations; takes a ready client and
    closes it on close().

    Exports read with export_read_preference (secondaryPreferred by default): they scan much
    and may lag a secondary by a moment, while every other read stays on the primary."""

    def __init__(self, client: Any, db_name: str, *,
                 export_read_preference: str = "secondaryPreferred"):
        if export_read_preference not in READ_PREFERENCES:
            raise ValueError(f"unknown read preference {export_read_preference!r}; "
                             f"expected one of {', '.join(READ_PREFERENCES)}")
        self._client = client
        self._db = client.get_database(db_name, write_concern=WriteConcern(w="majority"))
        self._tenants = self._db["tenants"]
        self._api_keys = self._db["api_keys"]
        self._subject_token_keys = self._db["subject_token_keys"]
        self._purposes = self._db["purposes"]
        self._policies = self._db["policies"]
        self._vendors = self._db["vendors"]
        self._subjects = self._db["subjects"]
        self._events = self._db["events"]
        self._idempotency = self._db["idempotency"]
        self._signing_keys = self._db["signing_keys"]
        self._page_sessions = self._db["page_sessions"]
        self._link_codes = self._db["link_codes"]
        self._requests = self._db["requests"]
        self._tenant_settings = self._db["tenant_settings"]
        self._daily_counts = self._db["daily_counts"]
        self._validity = daily.ValidityCache(self._load_validity)
        self._export_events = self._db.get_collection(
            "events", read_preference=READ_PREFERENCES[export_read_preference])
        self._indexes_ready = False
        self._indexes_lock = threading.Lock()

    def _load_validity(self, tenant_id: str) -> dict[str, float | None]:
        return {doc["key"]: doc.get("validity_days") for doc in self._purposes.find(
            {"tenant_id": tenant_id}, {"_id": 0, "key": 1, "validity_days": 1})}

    @property
    def db(self) -> Any:
        """The pymongo Database (for operations tooling and tests)."""
        return self._db

    def _ready(self) -> None:
        """Create the indexes once per process before the first operation relies on them.

        The unique indexes are what make concurrent appends safe, so nothing runs without them;
        while the server is unreachable this raises (Unavailable) and the next call tries again."""
        if not self._indexes_ready:
            with self._indexes_lock:
                if not self._indexes_ready:
                    self.ensure_indexes()

    def ensure_indexes(self) -> list[str]:
        """Create every index in INDEXES (a no-op for those that exist); one line per index."""
        done = []
        for collection, keys, options in INDEXES:
            extra = [k for k in ("unique", "expireAfterSeconds") if k in options]
            outcome = "ensured"
            try:
                try:
                    self._db[collection].create_index(keys, **options)
                except OperationFailure as exc:
                    if not changed_definition(exc):
                        raise
                    # Ours, declared differently by an earlier release (subjects' subject_ref
                    # index was unique): replace it.
                    self._db[collection].drop_index(options["name"])
                    self._db[collection].create_index(keys, **options)
                    outcome = "rebuilt (its definition changed)"
            except OperationFailure as exc:  # e.g. a unique index a sharded collection refuses
                raise Unavailable(f"MongoDB store: index {collection}.{options['name']} cannot be "
                                  f"created: {exc}") from exc
            done.append(f"{collection}: index {options['name']} ({spec(keys)})"
                        + "".join(f" {k}={options[k]}" for k in extra) + f" {outcome}")
        self._indexes_ready = True
        return done

    def migrate(self) -> list[str]:
        """Ensure every index, and give pre-expiry idempotency records their expires_at."""
        lines = [f"MongoDB database {self._db.name}: write concern majority"]
        lines += self.ensure_indexes()
        backfilled = 0
        for doc in self._idempotency.find({"expires_at": {"$exists": False}},
                                          {"_id": 1, "created_at": 1}):
            expires = parse_ts(doc["created_at"]) + IDEMPOTENCY_TTL
            self._idempotency.update_one({"_id": doc["_id"]}, {"$set": {"expires_at": expires}})
            backfilled += 1
        lines.append(f"idempotency: {backfilled} records without expires_at given one")
        if self._daily_counts.find_one({}, {"_id": 1}) is None and self._events.find_one({}, {"_id": 1}):
            lines.append("daily_counts: empty while events exist: run `consent-api rebuild-state` to count them")
        return lines

    def shard(self) -> list[str]:
        """Shard the big collections on SHARD_KEYS (run against mongos; idempotent)."""
        admin = self._client.admin
        admin.command("enableSharding", self._db.name)
        lines = [f"sharding enabled for database {self._db.name}"]
        for collection, key in SHARD_KEYS.items():
            # A hashed shard key needs an index starting with it; the unique indexes cannot be it.
            self._db[collection].create_index(key, name="shard_key")
            admin.command("shardCollection", f"{self._db.name}.{collection}", key=dict(key))
            lines.append(f"{collection}: sharded on {{{spec(key)}}}")
        lines += [f"{collection}: unsharded (small)" for collection in UNSHARDED]
        return lines

    def close(self) -> None:
        self._client.close()
