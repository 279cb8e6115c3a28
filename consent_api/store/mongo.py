"""MongoStore: pymongo against MongoDB in production, mongomock in tests.

The write path needs no multi-document transaction, so it runs unchanged on a sharded
cluster (DESIGN.md §2):

1. Read the subject document (the id-to-ref mapping and a cache of the projection). An
   unknown subject is created with a new ``subject_ref`` and ``seq`` 0 before any event is
   written; losing that race (DuplicateKeyError on (tenant_id, subject_id)) means a
   concurrent writer created it first, so we use theirs.
2. Seal ``plan(record)``'s drafts after the record's head and ``insert_many(ordered=True)``
   them. The unique index on (tenant_id, subject_ref, seq) lets exactly one writer own each
   seq: on a duplicate the record is caught up from the newer events (the events are the
   truth) and only the drafts not yet written are retried on the new head.
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
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from pymongo import ASCENDING, DESCENDING, HASHED, ReadPreference, ReturnDocument
from pymongo.errors import (
    BulkWriteError,
    ConnectionFailure,
    DuplicateKeyError,
    OperationFailure,
    PyMongoError,
    WriteConcernError,
)
from pymongo.write_concern import WriteConcern

from consent_api.domain.clock import format_ts, parse_ts
from consent_api.domain.ledger import ZERO_HASH, new_subject_ref, seal
from consent_api.domain.model import (
    Action,
    ApiKey,
    PolicyVersion,
    Purpose,
    PurposeRecord,
    SubjectRecord,
    SubjectTokenKey,
    Tenant,
    Vendor,
)
from consent_api.domain.projection import apply_events
from consent_api.errors import Conflict, Unavailable
from consent_api.store import records
from consent_api.store.port import (
    IDEMPOTENCY_TTL,
    Appended,
    Chain,
    ExportFilter,
    IdempotencyRecord,
    Plan,
    Store,
)

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
    # MongoDB's TTL monitor deletes a record once expires_at has passed (it runs every 60 s;
    # claim_idempotency_key ignores expired records it finds before then).
    ("idempotency", [("expires_at", ASCENDING)], {"name": "expires_at", "expireAfterSeconds": 0}),
    ("signing_keys", [("kid", ASCENDING)], {"name": "kid", "unique": True}),
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
             "signing_keys")

READ_PREFERENCES = {
    "primary": ReadPreference.PRIMARY,
    "primaryPreferred": ReadPreference.PRIMARY_PREFERRED,
    "secondary": ReadPreference.SECONDARY,
    "secondaryPreferred": ReadPreference.SECONDARY_PREFERRED,
    "nearest": ReadPreference.NEAREST,
}

EXPORT_ORDER = [("recorded_at", ASCENDING), ("seq", ASCENDING), ("event_id", ASCENDING)]
EXPORT_BATCH = 1000  # events per subject_id look-up while exporting
IN_CHUNK = 1000  # ids per $in / $or query
MAX_ATTEMPTS = 64  # rounds of losing the head to concurrent writers before giving up

_NO_ID = {"_id": 0}
_CATALOG_FIELDS = {"_id": 0, "tenant_id": 0}
_DECISIONS = (Action.GRANT, Action.DENY, Action.WITHDRAW)


def _translated(exc: PyMongoError) -> Exception | None:
    """Our error for a driver error, or None when it is a bug to let through."""
    if isinstance(exc, DuplicateKeyError):
        return Conflict("duplicate key")
    if isinstance(exc, BulkWriteError) and exc.details.get("writeConcernErrors"):
        return Unavailable("MongoDB store: write not acknowledged by a majority")
    if isinstance(exc, (ConnectionFailure, WriteConcernError)) or getattr(exc, "timeout", False):
        return Unavailable(f"MongoDB store: {exc}")
    return None


def _wrap_errors(method: Callable, *, ready: bool = False) -> Callable:
    """Translate driver errors raised by a store method (generators included) into ours; with
    ready=True, first make sure the indexes exist (see MongoStore._ready)."""
    if inspect.isgeneratorfunction(method):
        @functools.wraps(method)
        def generator(self: "MongoStore", *args: Any, **kwargs: Any) -> Iterator[Any]:
            try:
                if ready:
                    self._ready()
                yield from method(self, *args, **kwargs)
            except PyMongoError as exc:
                raise (_translated(exc) or exc) from exc
        return generator

    @functools.wraps(method)
    def wrapper(self: "MongoStore", *args: Any, **kwargs: Any) -> Any:
        try:
            if ready:
                self._ready()
            return method(self, *args, **kwargs)
        except PyMongoError as exc:
            raise (_translated(exc) or exc) from exc
    return wrapper


def _utc(value: datetime) -> datetime:
    """Datetimes from a client built without tz_aware=True come back naive (and are UTC)."""
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _changed_definition(exc: OperationFailure) -> bool:
    """An index of that name exists with other keys or options (IndexOptionsConflict/KeySpecsConflict)."""
    return exc.code in (85, 86) or "already exists with different options" in str(exc)


def _spec(keys: list[tuple[str, Any]]) -> str:
    return ", ".join(f"{name}: {direction}" for name, direction in keys)


def _subject_doc(tenant_id: str, record: SubjectRecord) -> dict[str, Any]:
    # Purposes are a list, not a sub-document keyed by purpose: keys may contain ".".
    return {
        "tenant_id": tenant_id,
        "subject_id": record.subject_id,
        "subject_ref": record.subject_ref,
        "seq": record.seq,
        "head_hash": record.head_hash,
        "age_band": record.age_band,
        "purposes": [{"key": key, **rec.to_dict()} for key, rec in sorted(record.purposes.items())],
        "granted": sorted(key for key, rec in record.purposes.items() if rec.action == Action.GRANT),
        "updated_at": record.updated_at,
    }


def _record_from(doc: dict[str, Any]) -> SubjectRecord:
    purposes = {}
    for item in doc.get("purposes") or ():
        fields = dict(item)
        key = fields.pop("key")
        purposes[key] = PurposeRecord.from_dict(fields)
    return SubjectRecord(
        subject_id=doc["subject_id"], subject_ref=doc["subject_ref"], seq=doc["seq"],
        head_hash=doc["head_hash"], age_band=doc.get("age_band"), purposes=purposes,
        updated_at=doc.get("updated_at"),
    )


def _event_doc(event: dict[str, Any]) -> dict[str, Any]:
    """The stored form of an event: everything the chain covers; subject_id lives in subjects."""
    return {k: v for k, v in event.items() if k != "subject_id"}


def _remaining(drafts: list[dict[str, Any]], written: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drafts of a re-plan that this append has not written yet.

    Matched by purpose, one written event cancelling one draft, rather than by position: a
    re-plan on a record that already holds our first events may drop them (withdraw-all no
    longer sees those purposes as granted), which would shift every later position.
    """
    done = Counter(e["purpose"] for e in written)
    left = []
    for draft in drafts:
        if done[draft.get("purpose")] > 0:
            done[draft.get("purpose")] -= 1
        else:
            left.append(draft)
    return left


class MongoStore(Store):
    """The Store on one MongoDB database; takes a ready client and closes it on close().

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
        self._export_events = self._db.get_collection(
            "events", read_preference=READ_PREFERENCES[export_read_preference])
        self._indexes_ready = False
        self._indexes_lock = threading.Lock()

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
                    if not _changed_definition(exc):
                        raise
                    # Ours, declared differently by an earlier release (subjects' subject_ref
                    # index was unique): replace it.
                    self._db[collection].drop_index(options["name"])
                    self._db[collection].create_index(keys, **options)
                    outcome = "rebuilt (its definition changed)"
            except OperationFailure as exc:  # e.g. a unique index a sharded collection refuses
                raise Unavailable(f"MongoDB store: index {collection}.{options['name']} cannot be "
                                  f"created: {exc}") from exc
            done.append(f"{collection}: index {options['name']} ({_spec(keys)})"
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
            lines.append(f"{collection}: sharded on {{{_spec(key)}}}")
        lines += [f"{collection}: unsharded (small)" for collection in UNSHARDED]
        return lines

    def close(self) -> None:
        self._client.close()

    # --- tenants and credentials -----------------------------------------------------------
    def create_tenant(self, tenant: Tenant) -> None:
        try:
            self._tenants.insert_one(records.tenant_doc(tenant))
        except DuplicateKeyError as exc:
            raise Conflict(f"tenant {tenant.id} exists") from exc

    def get_tenant(self, tenant_id: str) -> Tenant | None:
        doc = self._tenants.find_one({"id": tenant_id}, _NO_ID)
        return records.tenant_from(doc) if doc else None

    def iter_tenants(self) -> Iterator[Tenant]:
        for doc in self._tenants.find({}, _NO_ID).sort("id", ASCENDING):
            yield records.tenant_from(doc)

    def add_api_key(self, key: ApiKey) -> None:
        try:
            self._api_keys.insert_one(records.api_key_doc(key))
        except DuplicateKeyError as exc:
            raise Conflict("API key exists") from exc

    def find_api_key(self, key_hash: str) -> ApiKey | None:
        doc = self._api_keys.find_one({"key_hash": key_hash}, _NO_ID)
        return records.api_key_from(doc) if doc else None

    def get_api_key(self, tenant_id: str, key_id: str) -> ApiKey | None:
        doc = self._api_keys.find_one({"tenant_id": tenant_id, "id": key_id}, _NO_ID)
        return records.api_key_from(doc) if doc else None

    def list_api_keys(self, tenant_id: str, after: str | None, limit: int) -> list[ApiKey]:
        query: dict[str, Any] = {"tenant_id": tenant_id}
        if after is not None:
            query["id"] = {"$gt": after}
        docs = self._api_keys.find(query, _NO_ID).sort("id", ASCENDING).limit(limit)
        return [records.api_key_from(doc) for doc in docs]

    def revoke_api_key(self, tenant_id: str, key_id: str, at: datetime) -> ApiKey | None:
        doc = self._revoke(self._api_keys, {"tenant_id": tenant_id, "id": key_id}, at)
        return records.api_key_from(doc) if doc else None

    def publishable_origin_known(self, origin: str, tenant_id: str | None = None) -> bool:
        query: dict[str, Any] = {"type": "publishable", "origins": origin, "revoked_at": None}
        if tenant_id is not None:
            query["tenant_id"] = tenant_id
        return self._api_keys.find_one(query, {"_id": 1}) is not None

    def add_subject_token_key(self, key: SubjectTokenKey) -> None:
        try:
            self._subject_token_keys.insert_one(records.subject_token_key_doc(key))
        except DuplicateKeyError as exc:
            raise Conflict(f"key {key.kid} exists") from exc

    def find_subject_token_key(self, kid: str) -> SubjectTokenKey | None:
        doc = self._subject_token_keys.find_one({"kid": kid}, _NO_ID)
        return records.subject_token_key_from(doc) if doc else None

    def list_subject_token_keys(self, tenant_id: str) -> list[SubjectTokenKey]:
        docs = self._subject_token_keys.find({"tenant_id": tenant_id}, _NO_ID).sort(
            [("created_at", ASCENDING), ("kid", ASCENDING)])
        return [records.subject_token_key_from(doc) for doc in docs]

    def revoke_subject_token_key(self, tenant_id: str, kid: str, at: datetime) -> SubjectTokenKey | None:
        doc = self._revoke(self._subject_token_keys, {"tenant_id": tenant_id, "kid": kid}, at)
        return records.subject_token_key_from(doc) if doc else None

    @staticmethod
    def _revoke(collection: Any, query: dict[str, Any], at: datetime) -> dict[str, Any] | None:
        # One atomic update sets revoked_at only if unset, so the first revocation wins.
        doc = collection.find_one_and_update(
            {**query, "revoked_at": None}, {"$set": {"revoked_at": format_ts(at)}},
            projection=_NO_ID, return_document=ReturnDocument.AFTER,
        )
        return doc or collection.find_one(query, _NO_ID)

    # --- catalog ---------------------------------------------------------------------------
    @staticmethod
    def _put(collection: Any, query: dict[str, Any], doc: dict[str, Any]) -> bool:
        for _ in range(2):  # two first writers of one key: the loser's upsert becomes a replace
            try:
                result = collection.replace_one(query, {**query, **doc}, upsert=True)
            except DuplicateKeyError:
                continue
            return result.upserted_id is not None
        raise Conflict("concurrent writes to the same catalog entry")

    def put_purpose(self, tenant_id: str, purpose: Purpose) -> bool:
        return self._put(self._purposes, {"tenant_id": tenant_id, "key": purpose.key}, purpose.to_dict())

    def get_purpose(self, tenant_id: str, key: str) -> Purpose | None:
        doc = self._purposes.find_one({"tenant_id": tenant_id, "key": key}, _CATALOG_FIELDS)
        return Purpose.from_dict(doc) if doc else None

    def list_purposes(self, tenant_id: str) -> list[Purpose]:
        docs = self._purposes.find({"tenant_id": tenant_id}, _CATALOG_FIELDS).sort("key", ASCENDING)
        return [Purpose.from_dict(doc) for doc in docs]

    def add_policy(self, tenant_id: str, policy: PolicyVersion) -> None:
        try:
            self._policies.insert_one({"tenant_id": tenant_id, **policy.to_dict()})
        except DuplicateKeyError as exc:
            raise Conflict(f"policy version {policy.version} is already published") from exc

    def list_policies(self, tenant_id: str) -> list[PolicyVersion]:
        docs = self._policies.find({"tenant_id": tenant_id}, _CATALOG_FIELDS).sort("version", ASCENDING)
        return [PolicyVersion.from_dict(doc) for doc in docs]

    def put_vendor(self, tenant_id: str, vendor: Vendor) -> bool:
        return self._put(self._vendors, {"tenant_id": tenant_id, "key": vendor.key}, vendor.to_dict())

    def list_vendors(self, tenant_id: str) -> list[Vendor]:
        docs = self._vendors.find({"tenant_id": tenant_id}, _CATALOG_FIELDS).sort("key", ASCENDING)
        return [Vendor.from_dict(doc) for doc in docs]

    # --- subjects: reading and repairing -------------------------------------------------------
    def _load(self, tenant_id: str, subject_id: str) -> SubjectRecord | None:
        """The subject's record caught up with its events; None when unknown or erased."""
        doc = self._subjects.find_one({"tenant_id": tenant_id, "subject_id": subject_id}, _NO_ID)
        return self._catch_up(tenant_id, _record_from(doc)) if doc else None

    def _catch_up(self, tenant_id: str, record: SubjectRecord) -> SubjectRecord | None:
        """Apply the events newer than the record (a writer died or is mid-way) and save it."""
        newer = list(self._events.find(
            {"tenant_id": tenant_id, "subject_ref": record.subject_ref, "seq": {"$gt": record.seq}},
            _NO_ID,
        ).sort("seq", ASCENDING))
        if not newer:
            return record
        if any(e["action"] == Action.ERASE for e in newer):
            self._finish_erasure(tenant_id, record.subject_id, record.subject_ref)
            return None
        record = apply_events(record, newer)
        self._advance(tenant_id, record)
        return record

    def _catch_up_many(self, tenant_id: str, found: list[SubjectRecord]) -> list[SubjectRecord]:
        """_catch_up for a page of records in one query; drops erased and event-less ones."""
        behind: set[str] = set()
        for start in range(0, len(found), IN_CHUNK):
            clauses = [{"tenant_id": tenant_id, "subject_ref": r.subject_ref, "seq": {"$gt": r.seq}}
                       for r in found[start:start + IN_CHUNK]]
            behind.update(self._events.distinct("subject_ref", {"$or": clauses}))
        fresh = [self._catch_up(tenant_id, r) if r.subject_ref in behind else r for r in found]
        return [r for r in fresh if r is not None and r.seq > 0]

    def _advance(self, tenant_id: str, record: SubjectRecord) -> None:
        # Only forwards: a slower writer or repairer holding an older head changes nothing,
        # and the subject_ref condition keeps us off a subject re-created after erasure.
        self._subjects.update_one(
            {"tenant_id": tenant_id, "subject_id": record.subject_id,
             "subject_ref": record.subject_ref, "seq": {"$lt": record.seq}},
            {"$set": _subject_doc(tenant_id, record)},
        )

    def _finish_erasure(self, tenant_id: str, subject_id: str, subject_ref: str) -> None:
        self._subjects.delete_one({"tenant_id": tenant_id, "subject_id": subject_id,
                                   "subject_ref": subject_ref})
        self._idempotency.delete_many({"tenant_id": tenant_id, "subject_ref": subject_ref})

    def _page(self, tenant_id: str, query: dict[str, Any], after: str | None, limit: int,
              keep: Callable[[SubjectRecord], bool]) -> list[SubjectRecord]:
        """Records in subject_id order after `after`, refilled when repair drops some."""
        page: list[SubjectRecord] = []
        while len(page) < limit:
            wanted = limit - len(page)
            scoped = {"tenant_id": tenant_id, **query}
            if after is not None:
                scoped["subject_id"] = {"$gt": after}
            docs = list(self._subjects.find(scoped, _NO_ID).sort("subject_id", ASCENDING).limit(wanted))
            page += [r for r in self._catch_up_many(tenant_id, [_record_from(d) for d in docs]) if keep(r)]
            if len(docs) < wanted:
                break
            after = docs[-1]["subject_id"]
        return page

    def get_subject(self, tenant_id: str, subject_id: str) -> SubjectRecord | None:
        record = self._load(tenant_id, subject_id)
        return record if record is not None and record.seq > 0 else None

    def get_subjects(self, tenant_id: str, subject_ids: Sequence[str]) -> dict[str, SubjectRecord]:
        ids = list(dict.fromkeys(subject_ids))
        found: dict[str, SubjectRecord] = {}
        for start in range(0, len(ids), IN_CHUNK):
            docs = self._subjects.find(
                {"tenant_id": tenant_id, "subject_id": {"$in": ids[start:start + IN_CHUNK]}}, _NO_ID)
            for record in self._catch_up_many(tenant_id, [_record_from(d) for d in docs]):
                found[record.subject_id] = record
        return found

    def allowed_candidates(self, tenant_id: str, purpose: str, after: str | None,
                           limit: int) -> list[SubjectRecord]:
        def still_granted(record: SubjectRecord) -> bool:
            rec = record.purposes.get(purpose)
            return rec is not None and rec.action == Action.GRANT
        return self._page(tenant_id, {"granted": purpose}, after, limit, still_granted)

    def list_subjects(self, tenant_id: str, after: str | None, limit: int) -> list[SubjectRecord]:
        return self._page(tenant_id, {}, after, limit, lambda record: True)

    def replace_record(self, tenant_id: str, record: SubjectRecord) -> None:
        try:
            self._subjects.update_one(
                {"tenant_id": tenant_id, "subject_id": record.subject_id},
                {"$set": _subject_doc(tenant_id, record)}, upsert=True,
            )
        except DuplicateKeyError as exc:
            raise Conflict(f"subject_ref {record.subject_ref} belongs to another subject") from exc

    # --- subjects: the write path --------------------------------------------------------------
    def append(self, tenant_id: str, subject_id: str, plan: Plan, *, erase: bool = False) -> Appended:
        """Append plan(record)'s events (module docstring); raising in plan writes nothing.

        Losing the head to a concurrent writer re-runs plan on the caught-up record and writes
        the drafts not yet written; if plan raises then, the events already written stay (they
        are evidence) and the error propagates.
        """
        written: list[dict[str, Any]] = []
        record = self._load(tenant_id, subject_id)
        for _ in range(MAX_ATTEMPTS):
            exists = record is not None
            if record is None:
                record = SubjectRecord(subject_id=subject_id, subject_ref=new_subject_ref())
            drafts = _remaining(plan(record), written)
            if not drafts:
                break
            records.check_draft_tenant(tenant_id, drafts)
            if not exists and not self._create_subject(tenant_id, record):
                record = self._load(tenant_id, subject_id)  # a concurrent writer created it
                continue
            sealed = seal(drafts, record)
            inserted = self._insert_events(sealed)
            written += sealed[:inserted]
            record = apply_events(record, sealed[:inserted])
            if inserted == len(sealed):
                break
            record = self._catch_up(tenant_id, record)
        else:
            raise Unavailable(f"subject {subject_id}: too many concurrent writers, try again")
        if written:
            if erase:
                self._finish_erasure(tenant_id, subject_id, record.subject_ref)
            else:
                self._advance(tenant_id, record)
        return Appended(record, written)

    def _create_subject(self, tenant_id: str, record: SubjectRecord) -> bool:
        """Claim the subject id for record's new subject_ref; False when someone else did."""
        try:
            self._subjects.insert_one(_subject_doc(tenant_id, record))
        except DuplicateKeyError:
            return False
        return True

    def _insert_events(self, events: list[dict[str, Any]]) -> int:
        """Insert in seq order; the number inserted before a seq already taken."""
        try:
            self._events.insert_many([_event_doc(e) for e in events], ordered=True)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors") or []
            if errors and not exc.details.get("writeConcernErrors") and all(
                    e.get("code") == 11000 for e in errors):
                return errors[0]["index"]
            raise
        return len(events)

    # --- events ----------------------------------------------------------------------------------
    def subject_events(self, tenant_id: str, subject_ref: str, after_seq: int = 0,
                       limit: int | None = None) -> list[dict[str, Any]]:
        cursor = self._events.find(
            {"tenant_id": tenant_id, "subject_ref": subject_ref, "seq": {"$gt": after_seq}}, _NO_ID
        ).sort("seq", ASCENDING)
        if limit is not None:
            cursor = cursor.limit(limit)
        return list(cursor)

    def export_events(self, tenant_id: str, flt: ExportFilter) -> Iterator[dict[str, Any]]:
        query: dict[str, Any] = {"tenant_id": tenant_id}
        recorded_at: dict[str, str] = {}
        if flt.since:
            recorded_at["$gte"] = flt.since
        if flt.until:
            recorded_at["$lt"] = flt.until
        if recorded_at:
            query["recorded_at"] = recorded_at
        if flt.purpose:
            query["purpose"] = flt.purpose
        if flt.subject_ref:
            query["subject_ref"] = flt.subject_ref
        if flt.after:
            at, seq, event_id = flt.after.recorded_at, flt.after.seq, flt.after.event_id
            query["$or"] = [
                {"recorded_at": {"$gt": at}},
                {"recorded_at": at, "seq": {"$gt": seq}},
                {"recorded_at": at, "seq": seq, "event_id": {"$gt": event_id}},
            ]
        # Events may come from a secondary (export_read_preference); subject ids come from the
        # primary, where a subject's mapping is written before its first event.
        cursor = self._export_events.find(query, _NO_ID).sort(EXPORT_ORDER).batch_size(EXPORT_BATCH)
        try:
            batch: list[dict[str, Any]] = []
            for event in cursor:
                batch.append(event)
                if len(batch) == EXPORT_BATCH:
                    yield from self._with_subject_ids(tenant_id, batch)
                    batch = []
            yield from self._with_subject_ids(tenant_id, batch)
        finally:
            cursor.close()

    def _with_subject_ids(self, tenant_id: str, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        refs = list({e["subject_ref"] for e in events})
        ids = {
            doc["subject_ref"]: doc["subject_id"]
            for doc in self._subjects.find({"tenant_id": tenant_id, "subject_ref": {"$in": refs}},
                                           {"_id": 0, "subject_ref": 1, "subject_id": 1})
        } if refs else {}
        for event in events:
            event["subject_id"] = ids.get(event["subject_ref"])
        return events

    # --- whole chains --------------------------------------------------------------------------
    def list_chains(self, tenant_id: str, after: str | None, limit: int) -> list[Chain]:
        # One pass over the unique index in (subject_ref, seq) order, stopped after `limit`
        # chains; $group would read every later event of the tenant for each page.
        query: dict[str, Any] = {"tenant_id": tenant_id}
        if after is not None:
            query["subject_ref"] = {"$gt": after}
        fields = {"_id": 0, "subject_ref": 1, "seq": 1, "hash": 1, "action": 1}
        cursor = self._events.find(query, fields).sort([("subject_ref", ASCENDING), ("seq", ASCENDING)])
        heads: dict[str, dict[str, Any]] = {}
        try:
            for event in cursor.batch_size(EXPORT_BATCH):
                head = heads.get(event["subject_ref"])
                if head is None:
                    if len(heads) == limit:
                        break
                    head = heads[event["subject_ref"]] = {"events": 0}
                head.update(events=head["events"] + 1, seq=event["seq"], hash=event["hash"],
                            action=event["action"])
        finally:
            cursor.close()
        ids = {doc["subject_ref"]: doc["subject_id"] for doc in self._subjects.find(
            {"tenant_id": tenant_id, "subject_ref": {"$in": list(heads)}},
            {"_id": 0, "subject_ref": 1, "subject_id": 1})} if heads else {}
        # an erasure whose writer died before deleting the mapping is an erasure all the same
        return [Chain(ref, None if h["action"] == Action.ERASE else ids.get(ref), h["events"], h["seq"],
                      h["hash"]) for ref, h in heads.items()]

    def count_chains(self, tenant_id: str) -> int:
        found = list(self._events.aggregate([
            {"$match": {"tenant_id": tenant_id}}, {"$group": {"_id": "$subject_ref"}}, {"$count": "n"}]))
        return found[0]["n"] if found else 0

    def import_chain(self, tenant_id: str, subject_id: str | None,
                     events: Sequence[dict[str, Any]]) -> int:
        ref = records.chain_ref(tenant_id, events)
        if ref is None:
            return 0
        if events[-1]["action"] == Action.ERASE:
            subject_id = None
        head = self._events.find_one({"tenant_id": tenant_id, "subject_ref": ref},
                                     {"_id": 0, "seq": 1, "hash": 1}, sort=[("seq", DESCENDING)])
        new = records.new_in_chain(events, head["seq"] if head else 0, head["hash"] if head else ZERO_HASH)
        if subject_id is not None:  # the mapping first, as on the write path (module docstring)
            query = {"tenant_id": tenant_id, "subject_id": subject_id}
            doc = self._subjects.find_one(query, {"_id": 0, "subject_ref": 1})
            if doc is None and not self._create_subject(tenant_id, SubjectRecord(subject_id, ref)):
                doc = self._subjects.find_one(query, {"_id": 0, "subject_ref": 1})
            if doc is not None and doc["subject_ref"] != ref:
                raise Conflict(f"subject {subject_id} already has another chain here")
        if new and self._insert_events(new) != len(new):
            raise Conflict(f"chain {ref}: another writer appended to it during the import")
        if subject_id is not None:
            self._load(tenant_id, subject_id)  # catches the record up with the chain and saves it
        return len(new)

    # --- idempotency -------------------------------------------------------------------------
    def claim_idempotency_key(self, tenant_id: str, scope: str, key: str, request_hash: str,
                              now: datetime, ttl: timedelta = IDEMPOTENCY_TTL) -> IdempotencyRecord | None:
        query = {"tenant_id": tenant_id, "scope": scope, "key": key}
        for _ in range(MAX_ATTEMPTS):
            try:
                self._idempotency.insert_one({**query, "request_hash": request_hash, "status": None,
                                              "body": None, "subject_ref": None,
                                              "created_at": format_ts(now), "expires_at": now + ttl})
                return None
            except DuplicateKeyError:
                doc = self._idempotency.find_one(query, _NO_ID)
            if doc is None:  # released or expired in between: claim again
                continue
            expires = doc.get("expires_at")
            if expires is not None and _utc(expires) <= now:
                # Expired; the TTL monitor has not come round yet (it runs once a minute).
                self._idempotency.delete_one({**query, "expires_at": expires})
                continue
            return IdempotencyRecord(doc["request_hash"], doc["status"], doc["body"],
                                     parse_ts(doc["created_at"]))
        raise Unavailable("idempotency key is being claimed and released concurrently")

    def complete_idempotency_key(self, tenant_id: str, scope: str, key: str, status: int,
                                 body: str, subject_ref: str | None) -> None:
        self._idempotency.update_one(
            {"tenant_id": tenant_id, "scope": scope, "key": key},
            {"$set": {"status": status, "body": body, "subject_ref": subject_ref}},
        )

    def release_idempotency_key(self, tenant_id: str, scope: str, key: str) -> None:
        self._idempotency.delete_one({"tenant_id": tenant_id, "scope": scope, "key": key})

    # --- signing keys and health -----------------------------------------------------------------
    def list_signing_keys(self) -> list[dict[str, Any]]:
        return list(self._signing_keys.find({}, _NO_ID).sort([("created_at", ASCENDING), ("kid", ASCENDING)]))

    def add_signing_key(self, key: dict[str, Any]) -> None:
        try:
            self._signing_keys.insert_one(dict(key))
        except DuplicateKeyError as exc:
            raise Conflict(f"signing key {key['kid']} exists") from exc

    def update_signing_key(self, kid: str, changes: dict[str, Any]) -> None:
        if changes:
            self._signing_keys.update_one({"kid": kid}, {"$set": dict(changes)})

    def ping(self) -> None:
        self._db.command("ping")


# Every public method answers in our errors, and finds the indexes in place; listed once here
# rather than decorated one by one.
for _name in sorted(Store.__abstractmethods__ | {"count_chains"}):
    setattr(MongoStore, _name, _wrap_errors(getattr(MongoStore, _name), ready=True))
for _name in ("ensure_indexes", "migrate", "shard"):
    setattr(MongoStore, _name, _wrap_errors(getattr(MongoStore, _name)))
del _name
