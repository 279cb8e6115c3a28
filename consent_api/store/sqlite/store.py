"""SQLiteStore: tenants, credentials, the catalog, idempotency records and signing keys over the
Ledger's subjects and events (ledger.py); the per-process caches of the catalog and API keys."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from consent_api.domain.clock import format_ts, parse_ts
from consent_api.domain.model import ApiKey, PolicyVersion, Purpose, SubjectTokenKey, Tenant, Vendor
from consent_api.errors import Conflict
from consent_api.store import records
from consent_api.store.port import IDEMPOTENCY_TTL, IdempotencyRecord, Store
from consent_api.store.sqlite import schema
from consent_api.store.sqlite.delivery import DeliveryTables
from consent_api.store.sqlite.ledger import Ledger
from consent_api.store.sqlite.rows import dumps, loads

PURGE_BATCH = 100  # expired idempotency records removed per claim: bounded work on the write path
CREDENTIALS = "credentials"  # API keys, global: a key is found by its hash before its tenant is known
MAX_CACHED_KEYS = 10_000


def _catalog_version(tenant_id: str) -> str:
    return "catalog:" + tenant_id


@dataclass(frozen=True)
class _Catalog:
    purposes: dict[str, Purpose]  # ordered by key
    policies: tuple[PolicyVersion, ...]


class SQLiteStore(DeliveryTables, Ledger, Store):
    """The Store on one SQLite file (or ``:memory:``); the schema is brought up to date on opening."""

    def __init__(self, path: str = ":memory:", *, busy_timeout_s: float = 30.0):
        super().__init__(path, busy_timeout_s)
        self._catalogs: dict[str, tuple[int, _Catalog]] = {}
        self._keys: dict[str, tuple[int, ApiKey]] = {}
        with self._write() as conn:
            self.upgraded = schema.upgrade(conn, path)

    def migrate(self) -> list[str]:
        """The schema is brought up to date on opening; report what that did."""
        return [*schema.upgrade_messages(self.upgraded), f"SQLite {self.path}: schema version {self.schema_version()}"]

    def schema_version(self) -> int:
        with self._read() as conn:
            return schema.schema_version(conn)

    def ping(self) -> None:
        with self._read() as conn:
            conn.execute("SELECT 1").fetchone()

    # --- tenants and credentials -----------------------------------------------------------
    def create_tenant(self, tenant: Tenant) -> None:
        self._insert("INSERT INTO tenants (id, doc) VALUES (?, ?)", (tenant.id, dumps(records.tenant_doc(tenant))),
                     f"tenant {tenant.id} exists")

    def _insert(self, sql: str, args: tuple, exists: str, bump: str | None = None) -> None:
        """One INSERT in its own transaction; Conflict(exists) when the row is there already."""
        try:
            with self._write() as conn:
                conn.execute(sql, args)
                if bump is not None:
                    self._bump(conn, bump)
        except sqlite3.IntegrityError as exc:
            raise Conflict(exists) from exc

    def get_tenant(self, tenant_id: str) -> Tenant | None:
        with self._read() as conn:
            row = conn.execute("SELECT doc FROM tenants WHERE id = ?", (tenant_id,)).fetchone()
        return records.tenant_from(loads(row[0])) if row else None

    def iter_tenants(self) -> Iterator[Tenant]:
        with self._read() as conn:
            rows = conn.execute("SELECT doc FROM tenants ORDER BY id").fetchall()
        for (doc,) in rows:
            yield records.tenant_from(loads(doc))

    def add_api_key(self, key: ApiKey) -> None:
        self._insert("INSERT INTO api_keys (tenant_id, id, key_hash, doc) VALUES (?, ?, ?, ?)",
                     (key.tenant_id, key.id, key.key_hash, dumps(records.api_key_doc(key))),
                     "API key exists", bump=CREDENTIALS)

    def find_api_key(self, key_hash: str) -> ApiKey | None:
        """Cached per process while the credentials version stands: a revocation anywhere
        shows on the next call."""
        with self._read() as conn:
            version = self._version(conn, CREDENTIALS)
            hit = self._keys.get(key_hash)
            if hit is not None and hit[0] == version:
                return hit[1]
            row = conn.execute("SELECT doc FROM api_keys WHERE key_hash = ?", (key_hash,)).fetchone()
        if row is None:
            return None  # not cached: random tokens must not grow the cache
        key = records.api_key_from(loads(row[0]))
        if len(self._keys) >= MAX_CACHED_KEYS:
            self._keys.clear()
        self._keys[key_hash] = (version, key)
        return key

    def get_api_key(self, tenant_id: str, key_id: str) -> ApiKey | None:
        with self._read() as conn:
            row = conn.execute("SELECT doc FROM api_keys WHERE tenant_id = ? AND id = ?",
                               (tenant_id, key_id)).fetchone()
        return records.api_key_from(loads(row[0])) if row else None

    def list_api_keys(self, tenant_id: str, after: str | None, limit: int) -> list[ApiKey]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT doc FROM api_keys WHERE tenant_id = ? AND id > ? ORDER BY id LIMIT ?",
                (tenant_id, after or "", limit),
            ).fetchall()
        return [records.api_key_from(loads(doc)) for (doc,) in rows]

    def revoke_api_key(self, tenant_id: str, key_id: str, at: datetime) -> ApiKey | None:
        doc = self._revoke("api_keys", "id", tenant_id, key_id, at)
        return records.api_key_from(doc) if doc else None

    def _revoke(self, table: str, column: str, tenant_id: str, key: str, at: datetime) -> dict | None:
        """Stamp revoked_at on a credential's document; the first revocation time wins."""
        with self._write() as conn:
            row = conn.execute(f"SELECT doc FROM {table} WHERE tenant_id = ? AND {column} = ?",
                               (tenant_id, key)).fetchone()
            if row is None:
                return None
            doc = loads(row[0])
            doc["revoked_at"] = doc.get("revoked_at") or format_ts(at)
            conn.execute(f"UPDATE {table} SET doc = ? WHERE tenant_id = ? AND {column} = ?",
                         (dumps(doc), tenant_id, key))
            self._bump(conn, CREDENTIALS)
        return doc

    def publishable_origin_known(self, origin: str) -> bool:
        with self._read() as conn:
            row = conn.execute(
                "SELECT 1 FROM api_keys, json_each(api_keys.doc, '$.origins') o "
                "WHERE o.value = ? AND json_extract(api_keys.doc, '$.revoked_at') IS NULL LIMIT 1",
                (origin,),
            ).fetchone()
        return row is not None

    def add_subject_token_key(self, key: SubjectTokenKey) -> None:
        self._insert("INSERT INTO subject_token_keys (kid, tenant_id, doc) VALUES (?, ?, ?)",
                     (key.kid, key.tenant_id, dumps(records.subject_token_key_doc(key))), f"key {key.kid} exists")

    def find_subject_token_key(self, kid: str) -> SubjectTokenKey | None:
        with self._read() as conn:
            row = conn.execute("SELECT doc FROM subject_token_keys WHERE kid = ?", (kid,)).fetchone()
        return records.subject_token_key_from(loads(row[0])) if row else None

    def list_subject_token_keys(self, tenant_id: str) -> list[SubjectTokenKey]:
        with self._read() as conn:
            rows = conn.execute("SELECT doc FROM subject_token_keys WHERE tenant_id = ?",
                                (tenant_id,)).fetchall()
        keys = [records.subject_token_key_from(loads(doc)) for (doc,) in rows]
        return sorted(keys, key=lambda k: (k.created_at, k.kid))

    def revoke_subject_token_key(self, tenant_id: str, kid: str, at: datetime) -> SubjectTokenKey | None:
        doc = self._revoke("subject_token_keys", "kid", tenant_id, kid, at)
        return records.subject_token_key_from(doc) if doc else None

    # --- catalog ---------------------------------------------------------------------------
    def _put_doc(self, table: str, tenant_id: str, key: str, doc: dict) -> bool:
        with self._write() as conn:
            exists = conn.execute(f"SELECT 1 FROM {table} WHERE tenant_id = ? AND key = ?",
                                  (tenant_id, key)).fetchone()
            conn.execute(f"INSERT OR REPLACE INTO {table} (tenant_id, key, doc) VALUES (?, ?, ?)",
                         (tenant_id, key, dumps(doc)))
            self._bump(conn, _catalog_version(tenant_id))
        return exists is None

    def put_purpose(self, tenant_id: str, purpose: Purpose) -> bool:
        return self._put_doc("purposes", tenant_id, purpose.key, records.purpose_doc(purpose))

    def _catalog(self, tenant_id: str, fresh: bool = False) -> _Catalog:
        """Purposes and policies, cached per process while the tenant's catalog version stands."""
        name = _catalog_version(tenant_id)
        with self._read() as conn:
            version = self._version(conn, name, fresh)  # before the rows: a racing change only reloads
            hit = self._catalogs.get(tenant_id)
            if hit is not None and hit[0] == version:
                return hit[1]
            purposes = conn.execute("SELECT doc FROM purposes WHERE tenant_id = ? ORDER BY key",
                                    (tenant_id,)).fetchall()
            policies = conn.execute("SELECT doc FROM policies WHERE tenant_id = ? ORDER BY version",
                                    (tenant_id,)).fetchall()
        catalog = _Catalog(
            {p.key: p for p in (records.purpose_from(loads(doc)) for (doc,) in purposes)},
            tuple(records.policy_from(loads(doc)) for (doc,) in policies),
        )
        self._catalogs[tenant_id] = (version, catalog)
        return catalog

    def get_purpose(self, tenant_id: str, key: str) -> Purpose | None:
        purpose = self._catalog(tenant_id).purposes.get(key)
        if purpose is None:  # perhaps just created by another process: look again, uncached
            purpose = self._catalog(tenant_id, fresh=True).purposes.get(key)
        return purpose

    def list_purposes(self, tenant_id: str) -> list[Purpose]:
        return list(self._catalog(tenant_id).purposes.values())

    def add_policy(self, tenant_id: str, policy: PolicyVersion) -> None:
        self._insert("INSERT INTO policies (tenant_id, version, doc) VALUES (?, ?, ?)",
                     (tenant_id, policy.version, dumps(records.policy_doc(policy))),
                     f"policy version {policy.version} is already published", bump=_catalog_version(tenant_id))

    def list_policies(self, tenant_id: str) -> list[PolicyVersion]:
        return list(self._catalog(tenant_id).policies)

    def put_vendor(self, tenant_id: str, vendor: Vendor) -> bool:
        return self._put_doc("vendors", tenant_id, vendor.key, records.vendor_doc(vendor))

    def list_vendors(self, tenant_id: str) -> list[Vendor]:
        with self._read() as conn:
            rows = conn.execute("SELECT doc FROM vendors WHERE tenant_id = ? ORDER BY key", (tenant_id,)).fetchall()
        return [records.vendor_from(loads(doc)) for (doc,) in rows]

    # --- idempotency -------------------------------------------------------------------------
    # Claims, answers and releases ride the group commit too: a write with an Idempotency-Key
    # is three transactions, and under load each should share its fsync with others.
    def claim_idempotency_key(self, tenant_id: str, scope: str, key: str, request_hash: str,
                              now: datetime, ttl: timedelta = IDEMPOTENCY_TTL) -> IdempotencyRecord | None:
        stamp = format_ts(now)

        def claim(conn: sqlite3.Connection) -> IdempotencyRecord | None:
            # Every claim purges a few expired records: the table stays about 24 h of keys
            # without a background job, at the cost of one index probe per claim.
            conn.execute(
                "DELETE FROM idempotency WHERE (tenant_id, scope, key) IN (SELECT tenant_id, scope, key "
                "FROM idempotency WHERE expires_at <= ? LIMIT ?)", (stamp, PURGE_BATCH))
            row = conn.execute(
                "SELECT request_hash, status, body, created_at FROM idempotency "
                "WHERE tenant_id = ? AND scope = ? AND key = ? AND expires_at > ?",
                (tenant_id, scope, key, stamp),
            ).fetchone()
            if row is not None:
                return IdempotencyRecord(row[0], row[1], row[2], parse_ts(row[3]))
            conn.execute(
                "INSERT OR REPLACE INTO idempotency (tenant_id, scope, key, request_hash, created_at, "
                "expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                (tenant_id, scope, key, request_hash, stamp, format_ts(now + ttl)),
            )
            return None

        result: IdempotencyRecord | None = self._transact(claim)
        return result

    def complete_idempotency_key(self, tenant_id: str, scope: str, key: str, status: int,
                                 body: str, subject_ref: str | None) -> None:
        self._transact(lambda conn: conn.execute(
            "UPDATE idempotency SET status = ?, body = ?, subject_ref = ? WHERE tenant_id = ? AND scope = ? "
            "AND key = ?", (status, body, subject_ref, tenant_id, scope, key)))

    def release_idempotency_key(self, tenant_id: str, scope: str, key: str) -> None:
        self._transact(lambda conn: conn.execute(
            "DELETE FROM idempotency WHERE tenant_id = ? AND scope = ? AND key = ?", (tenant_id, scope, key)))

    # --- signing keys ------------------------------------------------------------------------
    def list_signing_keys(self) -> list[dict[str, Any]]:
        with self._read() as conn:
            rows = conn.execute("SELECT doc FROM signing_keys ORDER BY created_at, kid").fetchall()
        return [loads(doc) for (doc,) in rows]

    def add_signing_key(self, key: dict[str, Any]) -> None:
        self._insert("INSERT INTO signing_keys (kid, created_at, doc) VALUES (?, ?, ?)",
                     (key["kid"], key["created_at"], dumps(key)), f"signing key {key['kid']} exists")

    def update_signing_key(self, kid: str, changes: dict[str, Any]) -> None:
        with self._write() as conn:
            row = conn.execute("SELECT doc FROM signing_keys WHERE kid = ?", (kid,)).fetchone()
            if row is not None:
                doc = {**loads(row[0]), **changes}
                conn.execute("UPDATE signing_keys SET doc = ? WHERE kid = ?", (dumps(doc), kid))
