"""MongoStore: tenants, credentials, the catalog, idempotency records and signing keys over the
Ledger's subjects and events (ledger.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from consent_api.domain.clock import format_ts, parse_ts
from consent_api.domain.model import (
    ApiKey,
    LinkCode,
    PageSession,
    PolicyVersion,
    Purpose,
    SubjectTokenKey,
    Tenant,
    Vendor,
)
from consent_api.domain.requests import RightsRequest
from consent_api.errors import Conflict, Unavailable
from consent_api.store import records
from consent_api.store.mongo.documents import CATALOG_FIELDS, NO_ID, utc
from consent_api.store.mongo.errors import wrap_errors
from consent_api.store.mongo.ledger import Ledger
from consent_api.store.port import IDEMPOTENCY_TTL, IdempotencyRecord, RequestFilter, Store

MAX_ATTEMPTS = 64  # rounds of losing an idempotency claim to concurrent writers before giving up


class MongoStore(Ledger, Store):
    """The Store on one MongoDB database (database.py: collections, indexes, migrations)."""

    # --- tenants and credentials -----------------------------------------------------------
    def create_tenant(self, tenant: Tenant) -> None:
        try:
            self._tenants.insert_one(records.tenant_doc(tenant))
        except DuplicateKeyError as exc:
            raise Conflict(f"tenant {tenant.id} exists") from exc

    def get_tenant(self, tenant_id: str) -> Tenant | None:
        doc = self._tenants.find_one({"id": tenant_id}, NO_ID)
        return records.tenant_from(doc) if doc else None

    def iter_tenants(self) -> Iterator[Tenant]:
        for doc in self._tenants.find({}, NO_ID).sort("id", ASCENDING):
            yield records.tenant_from(doc)

    def add_api_key(self, key: ApiKey) -> None:
        try:
            self._api_keys.insert_one(records.api_key_doc(key))
        except DuplicateKeyError as exc:
            raise Conflict("API key exists") from exc

    def find_api_key(self, key_hash: str) -> ApiKey | None:
        doc = self._api_keys.find_one({"key_hash": key_hash}, NO_ID)
        return records.api_key_from(doc) if doc else None

    def get_api_key(self, tenant_id: str, key_id: str) -> ApiKey | None:
        doc = self._api_keys.find_one({"tenant_id": tenant_id, "id": key_id}, NO_ID)
        return records.api_key_from(doc) if doc else None

    def list_api_keys(self, tenant_id: str, after: str | None, limit: int) -> list[ApiKey]:
        query: dict[str, Any] = {"tenant_id": tenant_id}
        if after is not None:
            query["id"] = {"$gt": after}
        docs = self._api_keys.find(query, NO_ID).sort("id", ASCENDING).limit(limit)
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
        doc = self._subject_token_keys.find_one({"kid": kid}, NO_ID)
        return records.subject_token_key_from(doc) if doc else None

    def list_subject_token_keys(self, tenant_id: str) -> list[SubjectTokenKey]:
        docs = self._subject_token_keys.find({"tenant_id": tenant_id}, NO_ID).sort(
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
            projection=NO_ID, return_document=ReturnDocument.AFTER,
        )
        return doc or collection.find_one(query, NO_ID)

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
        return self._put(self._purposes, {"tenant_id": tenant_id, "key": purpose.key}, records.purpose_doc(purpose))

    def get_purpose(self, tenant_id: str, key: str) -> Purpose | None:
        doc = self._purposes.find_one({"tenant_id": tenant_id, "key": key}, CATALOG_FIELDS)
        return records.purpose_from(doc) if doc else None

    def list_purposes(self, tenant_id: str) -> list[Purpose]:
        docs = self._purposes.find({"tenant_id": tenant_id}, CATALOG_FIELDS).sort("key", ASCENDING)
        return [records.purpose_from(doc) for doc in docs]

    def add_policy(self, tenant_id: str, policy: PolicyVersion) -> None:
        try:
            self._policies.insert_one({"tenant_id": tenant_id, **records.policy_doc(policy)})
        except DuplicateKeyError as exc:
            raise Conflict(f"policy version {policy.version} is already published") from exc

    def list_policies(self, tenant_id: str) -> list[PolicyVersion]:
        docs = self._policies.find({"tenant_id": tenant_id}, CATALOG_FIELDS).sort("version", ASCENDING)
        return [records.policy_from(doc) for doc in docs]

    def put_vendor(self, tenant_id: str, vendor: Vendor) -> bool:
        return self._put(self._vendors, {"tenant_id": tenant_id, "key": vendor.key}, records.vendor_doc(vendor))

    def list_vendors(self, tenant_id: str) -> list[Vendor]:
        docs = self._vendors.find({"tenant_id": tenant_id}, CATALOG_FIELDS).sort("key", ASCENDING)
        return [records.vendor_from(doc) for doc in docs]

    # --- idempotency -------------------------------------------------------------------------
    def claim_idempotency_key(self, tenant_id: str, scope: str, key: str, request_hash: str,
                              now: datetime, ttl: timedelta = IDEMPOTENCY_TTL, *,
                              subject_id: str | None = None) -> IdempotencyRecord | None:
        query = {"tenant_id": tenant_id, "scope": scope, "key": key}
        for _ in range(MAX_ATTEMPTS):
            try:
                self._idempotency.insert_one({**query, "request_hash": request_hash, "status": None,
                                              "body": None, "subject_ref": None, "subject_id": subject_id,
                                              "created_at": format_ts(now), "expires_at": now + ttl})
                return None
            except DuplicateKeyError:
                doc = self._idempotency.find_one(query, NO_ID)
            if doc is None:  # released or expired in between: claim again
                continue
            expires = doc.get("expires_at")
            if expires is not None and utc(expires) <= now:
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

    # --- page sessions and one-time links ----------------------------------------------------
    def put_session(self, session: PageSession) -> None:
        try:
            self._page_sessions.insert_one({**records.session_doc(session), "expires": session.expires_at})
        except DuplicateKeyError as exc:
            raise Conflict("session exists") from exc

    def get_session(self, token_hash: str) -> PageSession | None:
        doc = self._page_sessions.find_one({"token_hash": token_hash}, {"_id": 0, "expires": 0})
        return records.session_from(doc) if doc else None

    def touch_session(self, token_hash: str, last_seen_at: datetime, locale: str | None = None) -> None:
        changes: dict[str, Any] = {"last_seen_at": format_ts(last_seen_at)}
        if locale is not None:
            changes["locale"] = locale
        self._page_sessions.update_one({"token_hash": token_hash}, {"$set": changes})

    def delete_session(self, token_hash: str) -> None:
        self._page_sessions.delete_one({"token_hash": token_hash})

    def delete_sessions(self, tenant_id: str, *, subject_id: str | None = None,
                        key_id: str | None = None) -> int:
        if subject_id is None and key_id is None:
            raise ValueError("name the subject or the key whose sessions end")
        who = {"subject_id": subject_id} if subject_id is not None else {"key_id": key_id}
        return self._page_sessions.delete_many({"tenant_id": tenant_id, **who}).deleted_count

    def add_link_code(self, code: LinkCode) -> None:
        try:
            self._link_codes.insert_one({**records.link_code_doc(code), "expires": code.expires_at})
        except DuplicateKeyError as exc:
            raise Conflict("link code exists") from exc

    def consume_link_code(self, code_hash: str, now: datetime) -> LinkCode | None:
        # find_one_and_delete is atomic: of two concurrent exchanges, one gets the document.
        doc = self._link_codes.find_one_and_delete({"code_hash": code_hash}, projection={"_id": 0, "expires": 0})
        if doc is None or parse_ts(doc["expires_at"]) <= now:
            return None
        return records.link_code_from(doc)

    # --- rights requests and tenant settings --------------------------------------------------
    def add_request(self, request: RightsRequest) -> None:
        try:
            self._requests.insert_one(records.request_doc(request))
        except DuplicateKeyError as exc:
            raise Conflict(f"request {request.id} exists") from exc

    def get_request(self, tenant_id: str, request_id: str) -> RightsRequest | None:
        doc = self._requests.find_one({"tenant_id": tenant_id, "id": request_id}, NO_ID)
        return records.request_from(doc) if doc else None

    def replace_request(self, request: RightsRequest, expected_version: int) -> bool:
        result = self._requests.replace_one(
            {"tenant_id": request.tenant_id, "id": request.id, "version": expected_version},
            records.request_doc(request))
        return result.matched_count == 1

    def list_requests(self, tenant_id: str, flt: RequestFilter, limit: int) -> list[RightsRequest]:
        query: dict[str, Any] = {"tenant_id": tenant_id}
        if flt.subject_id is not None:
            query["subject_id"] = flt.subject_id
        if flt.statuses:
            query["status"] = {"$in": list(flt.statuses)}
        if flt.type is not None:
            query["type"] = flt.type
        if flt.due_before is not None:
            query["due_at"] = {"$lt": format_ts(flt.due_before)}
        if flt.after is not None:
            due, last_id = format_ts(flt.after[0]), flt.after[1]
            query["$or"] = [{"due_at": {"$gt": due}}, {"due_at": due, "id": {"$gt": last_id}}]
        docs = self._requests.find(query, NO_ID).sort([("due_at", ASCENDING), ("id", ASCENDING)]).limit(limit)
        return [records.request_from(doc) for doc in docs]

    def forget_request_subject(self, tenant_id: str, subject_id: str) -> int:
        changed = 0
        for doc in self._requests.find({"tenant_id": tenant_id, "subject_id": subject_id}, NO_ID):
            request = records.request_from(doc)
            forgotten = request.changed(subject_id=None, details=None, note=None)
            changed += self.replace_request(forgotten, request.version)
        return changed

    def get_settings(self, tenant_id: str) -> dict[str, Any]:
        doc = self._tenant_settings.find_one({"tenant_id": tenant_id}, {"_id": 0, "tenant_id": 0})
        return dict(doc.get("settings") or {}) if doc else {}

    def put_settings(self, tenant_id: str, settings: dict[str, Any]) -> None:
        self._tenant_settings.replace_one({"tenant_id": tenant_id}, {"tenant_id": tenant_id, "settings": settings},
                                          upsert=True)

    # --- signing keys and health -----------------------------------------------------------------
    def list_signing_keys(self) -> list[dict[str, Any]]:
        return list(self._signing_keys.find({}, NO_ID).sort([("created_at", ASCENDING), ("kid", ASCENDING)]))

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
    setattr(MongoStore, _name, wrap_errors(getattr(MongoStore, _name), ready=True))
for _name in ("ensure_indexes", "migrate", "shard"):
    setattr(MongoStore, _name, wrap_errors(getattr(MongoStore, _name)))
del _name
