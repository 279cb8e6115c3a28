"""Store: the whole storage vocabulary of consent_api, in domain words.

Every tenant-owned method takes ``tenant_id`` first, and no method returns another tenant's
data. Global look-ups exist only where the credential itself names its tenant (an API key's
hash, a subject-token key's ``kid``). Adapters translate driver errors into ``consent_api.errors``.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from consent_api.domain import appending
from consent_api.domain.appending import Plan, Reseal, Sealed, Stored
from consent_api.domain.model import (
    ApiKey,
    PolicyVersion,
    Purpose,
    PurposeRecord,
    SubjectRecord,
    SubjectTokenKey,
    Tenant,
    Vendor,
)
from consent_api.store.delivery import Deliveries

__all__ = ["Appended", "Chain", "ExportCursor", "ExportFilter", "IDEMPOTENCY_TTL", "IdempotencyRecord",
           "Plan", "Reseal", "Sealed", "Store", "Stored"]

# DESIGN.md §8: an Idempotency-Key is kept at least 24 h; after that a replay runs anew.
IDEMPOTENCY_TTL = timedelta(hours=24)


@dataclass(frozen=True)
class Appended:
    record: SubjectRecord
    events: list[dict[str, Any]]


@dataclass(frozen=True)
class IdempotencyRecord:
    request_hash: str
    status: int | None  # None while the first request is still running
    body: str | None
    created_at: datetime


@dataclass(frozen=True)
class Chain:
    """The head of one subject_ref's hash chain: what a migration compares, source to target."""

    subject_ref: str
    subject_id: str | None  # None once the subject is erased
    events: int
    seq: int
    head_hash: str


@dataclass(frozen=True)
class ExportCursor:
    recorded_at: str
    seq: int
    event_id: str


@dataclass(frozen=True)
class ExportFilter:
    since: str | None = None
    until: str | None = None
    purpose: str | None = None
    subject_ref: str | None = None
    after: ExportCursor | None = None


class Store(Deliveries):
    """Ledger, catalog and credentials here; the change feed and webhooks in store/delivery.py."""

    # --- tenants and credentials -------------------------------------------------------
    @abc.abstractmethod
    def create_tenant(self, tenant: Tenant) -> None:
        """Persist a new tenant."""

    @abc.abstractmethod
    def get_tenant(self, tenant_id: str) -> Tenant | None:
        """The tenant, or None."""

    @abc.abstractmethod
    def add_api_key(self, key: ApiKey) -> None:
        """Persist a new API key (hash only)."""

    @abc.abstractmethod
    def find_api_key(self, key_hash: str) -> ApiKey | None:
        """The key whose secret hashes to key_hash, revoked or not; the hash names the tenant."""

    @abc.abstractmethod
    def get_api_key(self, tenant_id: str, key_id: str) -> ApiKey | None:
        """One key of the tenant."""

    @abc.abstractmethod
    def list_api_keys(self, tenant_id: str, after: str | None, limit: int) -> list[ApiKey]:
        """Keys ordered by id, those after the given id, at most limit."""

    @abc.abstractmethod
    def revoke_api_key(self, tenant_id: str, key_id: str, at: datetime) -> ApiKey | None:
        """Mark a key revoked (first revocation time wins); None when unknown."""

    @abc.abstractmethod
    def publishable_origin_known(self, origin: str) -> bool:
        """Is origin registered on any unrevoked publishable key (answers CORS preflights)?"""

    @abc.abstractmethod
    def add_subject_token_key(self, key: SubjectTokenKey) -> None:
        """Register a key for verifying the tenant's subject tokens."""

    @abc.abstractmethod
    def find_subject_token_key(self, kid: str) -> SubjectTokenKey | None:
        """The key with this kid; kids are random and globally unique."""

    @abc.abstractmethod
    def list_subject_token_keys(self, tenant_id: str) -> list[SubjectTokenKey]:
        """Every subject-token key of the tenant, oldest first."""

    @abc.abstractmethod
    def revoke_subject_token_key(self, tenant_id: str, kid: str, at: datetime) -> SubjectTokenKey | None:
        """Mark a subject-token key revoked; None when unknown."""

    # --- catalog -------------------------------------------------------------------------
    @abc.abstractmethod
    def put_purpose(self, tenant_id: str, purpose: Purpose) -> bool:
        """Create or replace a purpose; True when it was created."""

    @abc.abstractmethod
    def get_purpose(self, tenant_id: str, key: str) -> Purpose | None:
        """One purpose, archived ones included."""

    @abc.abstractmethod
    def list_purposes(self, tenant_id: str) -> list[Purpose]:
        """Every purpose of the tenant ordered by key (catalogs are small)."""

    @abc.abstractmethod
    def add_policy(self, tenant_id: str, policy: PolicyVersion) -> None:
        """Publish a policy version; Conflict if the version exists."""

    @abc.abstractmethod
    def list_policies(self, tenant_id: str) -> list[PolicyVersion]:
        """Every policy version of the tenant."""

    @abc.abstractmethod
    def put_vendor(self, tenant_id: str, vendor: Vendor) -> bool:
        """Create or replace a vendor disclosure; True when it was created."""

    @abc.abstractmethod
    def list_vendors(self, tenant_id: str) -> list[Vendor]:
        """Every vendor of the tenant ordered by key."""

    # --- subjects and the ledger ---------------------------------------------------------
    @abc.abstractmethod
    def get_subject(self, tenant_id: str, subject_id: str) -> SubjectRecord | None:
        """The subject's current record, or None for an unknown (or erased) subject."""

    @abc.abstractmethod
    def get_subjects(self, tenant_id: str, subject_ids: Sequence[str]) -> dict[str, SubjectRecord]:
        """Records of those subject ids that exist."""

    def purpose_records(self, tenant_id: str, subject_ids: Sequence[str],
                        purpose: str) -> dict[str, PurposeRecord | None]:
        """For those subject ids that exist, what their records say about one purpose (None:
        nothing yet). Bulk checks need no more; an adapter may read just that much."""
        return {subject_id: record.purposes.get(purpose)
                for subject_id, record in self.get_subjects(tenant_id, subject_ids).items()}

    def append(self, tenant_id: str, subject_id: str, plan: Plan, *, erase: bool = False) -> Appended:
        """Atomically seal and append plan(record)'s drafts and update the record
        (domain/appending.py: the algorithm; the adapter's subject_head and write_sealed store).

        With erase=True the record and the id-to-ref mapping are deleted after the append, so
        the subject's events remain only under its subject_ref."""
        with self.around_append():
            record, events = appending.append(
                tenant_id, subject_id, plan, self.subject_head(tenant_id, subject_id),
                lambda sealed, reseal: self.write_sealed(tenant_id, subject_id, sealed, reseal, erase=erase))
        return Appended(record, events)

    def around_append(self) -> AbstractContextManager[None]:
        """Entered around each append (head, plan, write): an adapter may get ready for the write."""
        return contextlib.nullcontext()

    @abc.abstractmethod
    def subject_head(self, tenant_id: str, subject_id: str) -> SubjectRecord | None:
        """The record an append plans on: the subject's current one, None when unknown or erased."""

    @abc.abstractmethod
    def write_sealed(self, tenant_id: str, subject_id: str, sealed: Sealed, reseal: Reseal, *,
                     erase: bool = False) -> Stored:
        """Store sealed.events and sealed.record if the subject's head is still sealed.base.

        Otherwise either store reseal(current record) in the same transaction, or answer the
        newer head (Stored.done False) after storing nothing or a prefix of the events. With
        erase=True the record and the id-to-ref mapping are deleted instead of saved."""

    @abc.abstractmethod
    def subject_events(self, tenant_id: str, subject_ref: str, after_seq: int = 0,
                       limit: int | None = None) -> list[dict[str, Any]]:
        """One subject's events in seq order (without subject_id)."""

    @abc.abstractmethod
    def export_events(self, tenant_id: str, flt: ExportFilter) -> Iterator[dict[str, Any]]:
        """Events ordered by (recorded_at, seq, event_id) with subject_id filled in (None once
        erased); streamed, never materialised."""

    def count_events(self, tenant_id: str, flt: ExportFilter) -> int | None:
        """How many events export_events would yield, when the adapter can tell cheaply; else None."""
        return None

    @abc.abstractmethod
    def allowed_candidates(self, tenant_id: str, purpose: str, after: str | None,
                           limit: int) -> list[SubjectRecord]:
        """Subjects whose last decision on purpose is a grant, ordered by subject_id."""

    @abc.abstractmethod
    def list_subjects(self, tenant_id: str, after: str | None, limit: int) -> list[SubjectRecord]:
        """Current records ordered by subject_id, those after the given id, at most limit."""

    def iter_subjects(self, tenant_id: str) -> Iterator[SubjectRecord]:
        """Every current record of one tenant, page by page."""
        after = None
        while page := self.list_subjects(tenant_id, after, 500):
            yield from page
            after = page[-1].subject_id

    @abc.abstractmethod
    def iter_tenants(self) -> Iterator[Tenant]:
        """Every tenant."""

    @abc.abstractmethod
    def replace_record(self, tenant_id: str, record: SubjectRecord) -> None:
        """Overwrite a subject's record with one rebuilt from its events."""

    # --- whole chains (migration between stores) -----------------------------------------
    @abc.abstractmethod
    def list_chains(self, tenant_id: str, after: str | None, limit: int) -> list[Chain]:
        """Heads of the chains (erased subjects' included) ordered by subject_ref, after the given ref."""

    def iter_chains(self, tenant_id: str) -> Iterator[Chain]:
        """Every chain head of one tenant, page by page."""
        after = None
        while page := self.list_chains(tenant_id, after, 500):
            yield from page
            after = page[-1].subject_ref

    def count_chains(self, tenant_id: str) -> int:
        """How many chains the tenant has (a progress total; adapters answer it faster)."""
        return sum(1 for _ in self.iter_chains(tenant_id))

    @abc.abstractmethod
    def import_chain(self, tenant_id: str, subject_id: str | None,
                     events: Sequence[dict[str, Any]]) -> int:
        """Store already-sealed events of one subject_ref verbatim and project its record.

        Events at or below the chain's current head are skipped, so a re-run writes nothing;
        the first new event must continue the head (seq and prev_hash), else Conflict. With a
        subject_id the subject's record is (re)built from the chain; None leaves an erased
        chain without a record. Returns how many events were written."""

    # --- idempotency ---------------------------------------------------------------------
    @abc.abstractmethod
    def claim_idempotency_key(self, tenant_id: str, scope: str, key: str, request_hash: str,
                              now: datetime, ttl: timedelta = IDEMPOTENCY_TTL) -> IdempotencyRecord | None:
        """Claim a key for a new request until now + ttl; None when claimed, else the live record.

        A record past its expiry counts as absent; adapters also purge expired records."""

    @abc.abstractmethod
    def complete_idempotency_key(self, tenant_id: str, scope: str, key: str, status: int,
                                 body: str, subject_ref: str | None) -> None:
        """Store the first answer for replays."""

    @abc.abstractmethod
    def release_idempotency_key(self, tenant_id: str, scope: str, key: str) -> None:
        """Forget a claim whose request failed, so it can be retried."""

    # --- service signing keys and health -------------------------------------------------
    @abc.abstractmethod
    def list_signing_keys(self) -> list[dict[str, Any]]:
        """The service's own signing keys, oldest first."""

    @abc.abstractmethod
    def add_signing_key(self, key: dict[str, Any]) -> None:
        """Persist a signing key; Conflict if its kid exists."""

    @abc.abstractmethod
    def update_signing_key(self, kid: str, changes: dict[str, Any]) -> None:
        """Change a signing key's state (retired_at, active)."""

    @abc.abstractmethod
    def ping(self) -> None:
        """Raise Unavailable unless the store answers (and is ready: schema and indexes in place)."""

    def migrate(self) -> list[str]:
        """Create or upgrade what the store needs (idempotent); one line per step taken."""
        return []

    def close(self) -> None:  # noqa: B027 - optional: an adapter holding nothing has nothing to release
        """Release connections."""
