"""SQLiteStore: tenants, credentials, the catalog, idempotency records and signing keys over the
Ledger's subjects and events (ledger.py); the per-process caches of the catalog and API keys."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from consent_api.domain import daily
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
from consent_api.errors import Conflict
from consent_api.store import records
from consent_api.store.port import IDEMPOTENCY_TTL, IdempotencyRecord, RequestFilter, Store
from consent_api.store.sqlite import schema
from consent_api.store.sqlite.delivery import DeliveryTables
from consent_api.store.sqlite.ledger import Ledger
from consent_api.store.sqlite.rows import ANSWER, dumps, loads

PURGE_BATCH = 100  # expired idempotency records removed per claim: bounded work on the write path
CREDENTIALS = "credentials"  # API keys, global: a key is found by its hash before its tenant is known
MAX_CACHED_KEYS = 10_000


def _catalog_version(tenant_id: str) -> str:
    return "catalog:" + tenant_id


@dataclass(frozen=True)
class _Catalog:
    purposes: dict[str, Purpose]  # ordered by key
    policies: tuple[PolicyVersion, ...]
    validity: dict[str, float | None]  # purpose key -> validity_days (the per-day counters' expiries)


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
        """Cached per process while the credentials version stands. The version is read on
        every call (fresh: never the VERSION_CHECK_S memo), so a key revoked by any process
        stops working at the next request everywhere."""
        with self._read() as conn:
            version = self._version(conn, CREDENTIALS, fresh=True)
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

    def publishable_origin_known(self, origin: str, tenant_id: str | None = None) -> bool:
        query = ("SELECT 1 FROM api_keys, json_each(api_keys.doc, '$.origins') o "
                 "WHERE o.value = ? AND json_extract(api_keys.doc, '$.revoked_at') IS NULL")
        args: tuple[str, ...] = (origin,)
        if tenant_id is not None:
            query, args = query + " AND api_keys.tenant_id = ?", (origin, tenant_id)
        with self._read() as conn:
            row = conn.execute(query + " LIMIT 1", args).fetchone()
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
        by_key = {p.key: p for p in (records.purpose_from(loads(doc)) for (doc,) in purposes)}
        catalog = _Catalog(by_key, tuple(records.policy_from(loads(doc)) for (doc,) in policies),
                           daily.validity_of(by_key.values()))
        self._catalogs[tenant_id] = (version, catalog)
        return catalog

    def get_purpose(self, tenant_id: str, key: str) -> Purpose | None:
        purpose = self._catalog(tenant_id).purposes.get(key)
        if purpose is None:  # perhaps just created by another process: look again, uncached
            purpose = self._catalog(tenant_id, fresh=True).purposes.get(key)
        return purpose

    def list_purposes(self, tenant_id: str) -> list[Purpose]:
        return list(self._catalog(tenant_id).purposes.values())

    def _validity(self, tenant_id: str, purposes: set[str]) -> daily.Validity:
        validity = self._catalog(tenant_id).validity
        if not purposes <= validity.keys():  # perhaps just defined by another process: look again
            validity = self._catalog(tenant_id, fresh=True).validity
        return validity

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
    # is two transactions (the claim; the events with the answer, batch.py), and under load
    # each shares its fsync with others. complete_idempotency_key stores the answers of
    # requests that wrote nothing.
    def claim_idempotency_key(self, tenant_id: str, scope: str, key: str, request_hash: str,
                              now: datetime, ttl: timedelta = IDEMPOTENCY_TTL, *,
                              subject_id: str | None = None) -> IdempotencyRecord | None:
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
                "expires_at, subject_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (tenant_id, scope, key, request_hash, stamp, format_ts(now + ttl), subject_id),
            )
            return None

        result: IdempotencyRecord | None = self._transact(claim)
        return result

    def complete_idempotency_key(self, tenant_id: str, scope: str, key: str, status: int,
                                 body: str, subject_ref: str | None) -> None:
        self._transact(lambda conn: conn.execute(ANSWER, (status, body, subject_ref, tenant_id, scope, key)))

    def release_idempotency_key(self, tenant_id: str, scope: str, key: str) -> None:
        self._transact(lambda conn: conn.execute(
            "DELETE FROM idempotency WHERE tenant_id = ? AND scope = ? AND key = ?", (tenant_id, scope, key)))

    # --- page sessions and one-time links ----------------------------------------------------
    def put_session(self, session: PageSession) -> None:
        with self._write() as conn:
            self._purge(conn, "page_sessions", "token_hash", session.created_at)
            try:
                conn.execute(
                    "INSERT INTO page_sessions (token_hash, tenant_id, subject_id, key_id, expires_at, doc) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (session.token_hash, session.tenant_id, session.subject_id, session.key_id,
                     format_ts(session.expires_at), dumps(records.session_doc(session))))
            except sqlite3.IntegrityError as exc:
                raise Conflict("session exists") from exc

    @staticmethod
    def _purge(conn: sqlite3.Connection, table: str, key: str, now: datetime) -> None:
        """Remove a bounded batch of expired rows: the table needs no background job."""
        conn.execute(f"DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {table} "
                     "WHERE expires_at <= ? LIMIT ?)", (format_ts(now), PURGE_BATCH))

    def get_session(self, token_hash: str) -> PageSession | None:
        with self._read() as conn:
            row = conn.execute("SELECT doc FROM page_sessions WHERE token_hash = ?", (token_hash,)).fetchone()
        return records.session_from(loads(row[0])) if row else None

    def touch_session(self, token_hash: str, last_seen_at: datetime, locale: str | None = None) -> None:
        with self._write() as conn:
            row = conn.execute("SELECT doc FROM page_sessions WHERE token_hash = ?", (token_hash,)).fetchone()
            if row is None:
                return
            doc = loads(row[0])
            doc["last_seen_at"] = format_ts(last_seen_at)
            if locale is not None:
                doc["locale"] = locale
            conn.execute("UPDATE page_sessions SET doc = ? WHERE token_hash = ?", (dumps(doc), token_hash))

    def delete_session(self, token_hash: str) -> None:
        with self._write() as conn:
            conn.execute("DELETE FROM page_sessions WHERE token_hash = ?", (token_hash,))

    def delete_sessions(self, tenant_id: str, *, subject_id: str | None = None,
                        key_id: str | None = None) -> int:
        if subject_id is None and key_id is None:
            raise ValueError("name the subject or the key whose sessions end")
        column, value = ("subject_id", subject_id) if subject_id is not None else ("key_id", key_id)
        with self._write() as conn:
            return conn.execute(f"DELETE FROM page_sessions WHERE tenant_id = ? AND {column} = ?",
                                (tenant_id, value)).rowcount

    def add_link_code(self, code: LinkCode) -> None:
        with self._write() as conn:
            self._purge(conn, "link_codes", "code_hash", code.created_at)
            try:
                conn.execute("INSERT INTO link_codes (code_hash, tenant_id, expires_at, doc) VALUES (?, ?, ?, ?)",
                             (code.code_hash, code.tenant_id, format_ts(code.expires_at),
                              dumps(records.link_code_doc(code))))
            except sqlite3.IntegrityError as exc:
                raise Conflict("link code exists") from exc

    def consume_link_code(self, code_hash: str, now: datetime) -> LinkCode | None:
        # One DELETE ... RETURNING under the write lock: of two concurrent exchanges, one gets the row.
        with self._write() as conn:
            row = conn.execute("DELETE FROM link_codes WHERE code_hash = ? RETURNING expires_at, doc",
                               (code_hash,)).fetchone()
        if row is None or row[0] <= format_ts(now):
            return None
        return records.link_code_from(loads(row[1]))

    # --- rights requests and tenant settings --------------------------------------------------
    @staticmethod
    def _request_row(request: RightsRequest) -> tuple:
        return (request.subject_id, request.status, request.type, format_ts(request.due_at), request.version,
                dumps(records.request_doc(request)))

    def add_request(self, request: RightsRequest) -> None:
        self._insert("INSERT INTO requests (subject_id, status, type, due_at, version, doc, tenant_id, id) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (*self._request_row(request), request.tenant_id, request.id),
                     f"request {request.id} exists")

    def get_request(self, tenant_id: str, request_id: str) -> RightsRequest | None:
        with self._read() as conn:
            row = conn.execute("SELECT doc FROM requests WHERE tenant_id = ? AND id = ?",
                               (tenant_id, request_id)).fetchone()
        return records.request_from(loads(row[0])) if row else None

    def replace_request(self, request: RightsRequest, expected_version: int) -> bool:
        with self._write() as conn:
            return conn.execute(
                "UPDATE requests SET subject_id = ?, status = ?, type = ?, due_at = ?, version = ?, doc = ? "
                "WHERE tenant_id = ? AND id = ? AND version = ?",
                (*self._request_row(request), request.tenant_id, request.id, expected_version)).rowcount == 1

    def list_requests(self, tenant_id: str, flt: RequestFilter, limit: int) -> list[RightsRequest]:
        where, args = ["tenant_id = ?"], [tenant_id]  # type: tuple[list[str], list[Any]]
        if flt.subject_id is not None:
            where.append("subject_id = ?")
            args.append(flt.subject_id)
        if flt.statuses:
            where.append(f"status IN ({','.join('?' * len(flt.statuses))})")
            args += list(flt.statuses)
        if flt.type is not None:
            where.append("type = ?")
            args.append(flt.type)
        if flt.due_before is not None:
            where.append("due_at < ?")
            args.append(format_ts(flt.due_before))
        if flt.after is not None:
            where.append("(due_at, id) > (?, ?)")
            args += [format_ts(flt.after[0]), flt.after[1]]
        with self._read() as conn:
            rows = conn.execute(f"SELECT doc FROM requests WHERE {' AND '.join(where)} ORDER BY due_at, id LIMIT ?",
                                (*args, limit)).fetchall()
        return [records.request_from(loads(doc)) for (doc,) in rows]

    def forget_request_subject(self, tenant_id: str, subject_id: str) -> int:
        with self._write() as conn:
            rows = conn.execute("SELECT doc FROM requests WHERE tenant_id = ? AND subject_id = ?",
                                (tenant_id, subject_id)).fetchall()
            for (doc,) in rows:
                forgotten = records.request_from(loads(doc)).changed(subject_id=None, details=None, note=None)
                conn.execute("UPDATE requests SET subject_id = NULL, version = ?, doc = ? "
                             "WHERE tenant_id = ? AND id = ?",
                             (forgotten.version, dumps(records.request_doc(forgotten)), tenant_id, forgotten.id))
        return len(rows)

    def get_settings(self, tenant_id: str) -> dict[str, Any]:
        with self._read() as conn:
            row = conn.execute("SELECT doc FROM tenant_settings WHERE tenant_id = ?", (tenant_id,)).fetchone()
        return loads(row[0]) if row else {}

    def put_settings(self, tenant_id: str, settings: dict[str, Any]) -> None:
        with self._write() as conn:
            conn.execute("INSERT OR REPLACE INTO tenant_settings (tenant_id, doc) VALUES (?, ?)",
                         (tenant_id, dumps(settings)))

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
