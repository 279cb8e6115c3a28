"""Store: the whole storage vocabulary of consent_api, in domain words.

Every tenant-owned method takes ``tenant_id`` first, and no method returns another tenant's
data. Global look-ups exist only where the credential itself names its tenant (an API key's
hash, a subject-token key's ``kid``). Adapters translate driver errors into ``consent_api.errors``.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from consent_api.domain import appending, ledger
from consent_api.domain.appending import Plan, Reseal, Sealed, Stored
from consent_api.domain.clock import format_ts
from consent_api.domain.daily import Tally
from consent_api.domain.model import (
    ApiKey,
    LinkCode,
    PageSession,
    PolicyVersion,
    Purpose,
    PurposeRecord,
    SubjectRecord,
    SubjectTokenKey,
    Tenant,
    Vendor,
)
from consent_api.domain.requests import RightsRequest
from consent_api.store.delivery import Deliveries

__all__ = ["Answer", "Appended", "Chain", "DailyCounts", "ExportCursor", "ExportFilter", "IDEMPOTENCY_TTL",
           "IdempotencyRecord", "Plan", "RequestFilter", "Reseal", "Sealed", "Store", "Stored"]

# DESIGN.md §8: an Idempotency-Key is kept at least 24 h; after that a replay runs anew.
IDEMPOTENCY_TTL = timedelta(hours=24)


@dataclass(frozen=True)
class Answer:
    """The answer to an idempotent write, for the store to keep with the events it reports.

    ``render(record, events)`` makes it from the subject's record after the append and all of
    the request's events. ``resumes``: when an earlier attempt at the request, which claimed
    the key at that time, died without answering; its events, found by their idempotency_key,
    are this request's (written once, answered again)."""

    scope: str
    key: str
    render: Callable[[SubjectRecord, list[dict[str, Any]]], tuple[int, str]]
    resumes: datetime | None = None

    def after(self, earlier: list[dict[str, Any]]) -> Answer:
        """This answer for a write that comes after the earlier events of the same request."""
        if not earlier:
            return self
        render = self.render
        return Answer(self.scope, self.key, lambda record, events: render(record, [*earlier, *events]),
                      self.resumes)


@dataclass(frozen=True)
class Appended:
    record: SubjectRecord
    events: list[dict[str, Any]]
    answer: tuple[int, str] | None = None  # (status, body): the Answer, stored with the events


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


@dataclass(frozen=True)
class RequestFilter:
    """Which rights requests a list holds; lists are ordered by (due_at, id)."""

    subject_id: str | None = None
    statuses: tuple[str, ...] = ()  # any of them; () for all
    type: str | None = None
    due_before: datetime | None = None  # due_at strictly before
    after: tuple[datetime, str] | None = None  # the (due_at, id) of the previous page's last


@dataclass(frozen=True)
class DailyCounts:
    """Counter rows (domain/daily.py) of a span of days, and what came before it: per
    (purpose, policy_version), the sum of ``allowed`` over every earlier day."""

    opening: dict[tuple[str, str], int]
    rows: Tally


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
    def publishable_origin_known(self, origin: str, tenant_id: str | None = None) -> bool:
        """Is origin registered on an unrevoked publishable key (of tenant_id, when given)?"""

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

    def append(self, tenant_id: str, subject_id: str, plan: Plan, *, erase: bool = False,
               answer: Answer | None = None) -> Appended:
        """Atomically seal and append plan(record)'s drafts and update the record
        (domain/appending.py: the algorithm; the adapter's subject_head and write_sealed store).

        With erase=True the record and the id-to-ref mapping are deleted after the append, so
        the subject's events remain only under its subject_ref. With an answer (an idempotent
        request), a store that can commits the answer with the events (Appended.answer); and
        when answer.resumes, the events an earlier attempt wrote are this append's."""
        with self.around_append():
            head = self.subject_head(tenant_id, subject_id)
            earlier = self.request_events(tenant_id, head, answer) if answer and answer.resumes else []
            answering = answer.after(earlier) if answer else None
            stored = appending.append(
                tenant_id, subject_id, plan, head,
                lambda sealed, reseal: self.write_sealed(tenant_id, subject_id, sealed, reseal, erase=erase,
                                                         answer=answering),
                earlier)
        assert stored.record is not None
        return Appended(stored.record, stored.events, stored.answer)

    def request_events(self, tenant_id: str, head: SubjectRecord | None, answer: Answer) -> list[dict[str, Any]]:
        """The events of head's chain that an attempt at answer's request wrote since it
        claimed the key: they carry its idempotency_key and were recorded after the claim."""
        if head is None or answer.resumes is None:
            return []
        since = format_ts(answer.resumes)
        return [e for e in self.subject_events(tenant_id, head.subject_ref)
                if e.get("idempotency_key") == answer.key and e["recorded_at"] >= since]

    def around_append(self) -> AbstractContextManager[None]:
        """Entered around each append (head, plan, write): an adapter may get ready for the write."""
        return contextlib.nullcontext()

    @abc.abstractmethod
    def subject_head(self, tenant_id: str, subject_id: str) -> SubjectRecord | None:
        """The record an append plans on: the subject's current one, None when unknown or erased."""

    @abc.abstractmethod
    def write_sealed(self, tenant_id: str, subject_id: str, sealed: Sealed, reseal: Reseal, *,
                     erase: bool = False, answer: Answer | None = None) -> Stored:
        """Store sealed.events and sealed.record if the subject's head is still sealed.base.

        Otherwise either store reseal(current record) in the same transaction, or answer the
        newer head (Stored.done False) after storing nothing or a prefix of the events. With
        erase=True the record and the id-to-ref mapping are deleted instead of saved. A store
        that commits several writes at once stores answer.render(record, events) as the
        answer of its idempotency key in the transaction of the events (Stored.answer); one
        that cannot leaves it to complete_idempotency_key."""

    @abc.abstractmethod
    def subject_events(self, tenant_id: str, subject_ref: str, after_seq: int = 0,
                       limit: int | None = None) -> list[dict[str, Any]]:
        """One subject's events in seq order (without subject_id)."""

    @abc.abstractmethod
    def export_events(self, tenant_id: str, flt: ExportFilter) -> Iterator[dict[str, Any]]:
        """Events ordered by (recorded_at, seq, event_id) with subject_id filled in (None once
        erased); streamed, never materialised."""

    def export_lines(self, tenant_id: str, flt: ExportFilter) -> Iterator[list[bytes]]:
        """The same events as NDJSON export lines (ledger.export_line), a batch of lines at a
        time; an adapter that stores the lines' bytes passes them through."""
        batch: list[bytes] = []
        for event in self.export_events(tenant_id, flt):
            batch.append(ledger.export_line(event))
            if len(batch) >= 1000:
                yield batch
                batch = []
        if batch:
            yield batch

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

    # --- per-day counters (GET /v1/stats) -------------------------------------------------
    # Every write that appends events also adds what they count (domain/daily.py) to the
    # tenant's counters: in the same transaction (SQLite), or right after the events by the
    # writer or reader that moves the subject's record past them (MongoDB).
    @abc.abstractmethod
    def daily_counts(self, tenant_id: str, since: str | None, until: str,
                     purpose: str | None = None) -> DailyCounts:
        """Counter rows of the days in [since, until) ("YYYY-MM-DD"; since None: from the
        first), one purpose or all, and the opening sums of ``allowed`` before since."""

    @abc.abstractmethod
    def replace_daily_counts(self, tenant_id: str, counts: Tally) -> None:
        """Replace every counter row of the tenant with counts (a recount from the ledger)."""

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

    def finish_import(self) -> None:  # noqa: B027 - a hook: an adapter whose layout needs nothing keeps it
        """After import_chain has copied whole chains (migrate-store): lay the events out for
        reading in time order, where the adapter's layout depends on the order of writing."""

    # --- idempotency ---------------------------------------------------------------------
    @abc.abstractmethod
    def claim_idempotency_key(self, tenant_id: str, scope: str, key: str, request_hash: str,
                              now: datetime, ttl: timedelta = IDEMPOTENCY_TTL, *,
                              subject_id: str | None = None) -> IdempotencyRecord | None:
        """Claim a key for a new request until now + ttl; None when claimed, else the live record.

        A record past its expiry counts as absent; adapters also purge expired records. An
        erasure of subject_id (the subject the request is about) deletes the record, as it
        deletes those completed with the subject's subject_ref."""

    @abc.abstractmethod
    def complete_idempotency_key(self, tenant_id: str, scope: str, key: str, status: int,
                                 body: str, subject_ref: str | None) -> None:
        """Store the first answer for replays."""

    @abc.abstractmethod
    def release_idempotency_key(self, tenant_id: str, scope: str, key: str) -> None:
        """Forget a claim whose request failed, so it can be retried."""

    # --- page sessions and one-time links (web/pages/) -------------------------------------
    # Found by the hash of the secret the browser holds, like an API key: the record names its
    # tenant. Expired records are purged by the adapters (a bounded batch per put, or a TTL index).
    @abc.abstractmethod
    def put_session(self, session: PageSession) -> None:
        """Persist a new page session; Conflict if its token_hash exists."""

    @abc.abstractmethod
    def get_session(self, token_hash: str) -> PageSession | None:
        """The session whose token hashes to token_hash, expired or not; None when unknown."""

    @abc.abstractmethod
    def touch_session(self, token_hash: str, last_seen_at: datetime, locale: str | None = None) -> None:
        """Record activity (and, when given, the locale the browser chose); unknown: no-op."""

    @abc.abstractmethod
    def delete_session(self, token_hash: str) -> None:
        """End one session (sign-out); unknown: no-op."""

    @abc.abstractmethod
    def delete_sessions(self, tenant_id: str, *, subject_id: str | None = None,
                        key_id: str | None = None) -> int:
        """End the tenant's sessions of one subject or of one API key; how many ended."""

    @abc.abstractmethod
    def add_link_code(self, code: LinkCode) -> None:
        """Persist a new one-time link code (hash only); Conflict if it exists."""

    @abc.abstractmethod
    def consume_link_code(self, code_hash: str, now: datetime) -> LinkCode | None:
        """Atomically remove and return the code if it is unexpired at now; None otherwise
        (unknown, used already, or expired), so a code opens at most one session."""

    # --- rights requests and tenant settings ----------------------------------------------
    @abc.abstractmethod
    def add_request(self, request: RightsRequest) -> None:
        """Persist a new rights request; Conflict if its id exists."""

    @abc.abstractmethod
    def get_request(self, tenant_id: str, request_id: str) -> RightsRequest | None:
        """One request of the tenant."""

    @abc.abstractmethod
    def replace_request(self, request: RightsRequest, expected_version: int) -> bool:
        """Store request if the stored one still has expected_version (compare-and-set); False
        when another writer changed it first (or it is unknown)."""

    @abc.abstractmethod
    def list_requests(self, tenant_id: str, flt: RequestFilter, limit: int) -> list[RightsRequest]:
        """The tenant's requests matching flt, ordered by (due_at, id), at most limit."""

    @abc.abstractmethod
    def forget_request_subject(self, tenant_id: str, subject_id: str) -> int:
        """Erasure: the subject's requests keep their dates and statuses but lose subject_id,
        details and note; how many were changed."""

    @abc.abstractmethod
    def get_settings(self, tenant_id: str) -> dict[str, Any]:
        """The tenant's settings document ({} when none was stored)."""

    @abc.abstractmethod
    def put_settings(self, tenant_id: str, settings: dict[str, Any]) -> None:
        """Replace the tenant's settings document."""

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
