"""migrate-store: copy every tenant from one store to another, then prove the copy.

The copy streams tenant by tenant: the tenant, its catalog, then every hash chain (erased
subjects' included) one subject at a time with its events in seq order, then the tenant's API
keys and subject-token keys; the service's signing keys come last. The tenant's per-day counters
are counted again from the chains read (services/stats.py) and replace the target's. Events are copied verbatim
(sealed, hashes and all) through ``Store.import_chain``, which skips what the target already
holds, so an interrupted run is resumed by running it again and a finished one re-runs as a
no-op; ``Store.finish_import`` then lets a SQLite target store them in recorded order.
Idempotency records are not copied: they expire within 24 h, and a migration runs while writes
are stopped.

``verify_copy`` then compares, tenant by tenant, the catalog, the keys, every chain's head
(subject_ref, subject_id, event count, last seq and hash) and every subject's record head.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from consent_api.domain import daily
from consent_api.errors import Conflict
from consent_api.store.port import Store

# tenant_id, chains done, chains in the tenant, events written so far (all tenants)
Progress = Callable[[str, int, int, int], None]
T = TypeVar("T")


@dataclass
class Copied:
    tenants: int = 0
    catalog_entries: int = 0
    chains: int = 0
    chains_already_there: int = 0
    events: int = 0
    api_keys: int = 0
    subject_token_keys: int = 0
    signing_keys: int = 0

    def summary(self) -> str:
        return (f"copied {self.tenants} tenants, {self.catalog_entries} catalog entries, "
                f"{self.chains} chains ({self.chains_already_there} already there), {self.events} events, "
                f"{self.api_keys} API keys, {self.subject_token_keys} subject-token keys, "
                f"{self.signing_keys} signing keys")


@dataclass
class Verdict:
    tenants: int = 0
    chains: int = 0
    events: int = 0
    subjects: int = 0
    mismatches: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def summary(self) -> str:
        counts = (f"{self.tenants} tenants, {self.chains} chains, {self.events} events, "
                  f"{self.subjects} subjects")
        if self.ok:
            return f"verified: {counts}; every chain head, event count and subject head matches"
        return f"MISMATCH: {len(self.mismatches)} differences ({counts} in the source)"


def copy_store(source: Store, target: Store, progress: Progress | None = None) -> Copied:
    """Copy what target lacks from source (resumable, idempotent); see the module docstring."""
    copied = Copied()
    for tenant in source.iter_tenants():
        if target.get_tenant(tenant.id) is None:
            try:
                target.create_tenant(tenant)
                copied.tenants += 1
            except Conflict:  # created in between; verify_copy compares it
                pass
        copied.catalog_entries += _copy_catalog(source, target, tenant.id)
        _copy_chains(source, target, tenant.id, copied, progress)
        copied.api_keys += _copy_api_keys(source, target, tenant.id)
        copied.subject_token_keys += _copy_subject_token_keys(source, target, tenant.id)
    copied.signing_keys += _copy_signing_keys(source, target)
    if copied.events:
        target.finish_import()  # chains were copied one by one: the target lays them out in time order
    return copied


def _copy_catalog(source: Store, target: Store, tenant_id: str) -> int:
    written = 0
    there = {p.key: p for p in target.list_purposes(tenant_id)}
    for purpose in source.list_purposes(tenant_id):
        if there.get(purpose.key) != purpose:
            target.put_purpose(tenant_id, purpose)
            written += 1
    published = {p.version for p in target.list_policies(tenant_id)}
    for policy in source.list_policies(tenant_id):
        if policy.version not in published:
            target.add_policy(tenant_id, policy)
            written += 1
    vendors = {v.key: v for v in target.list_vendors(tenant_id)}
    for vendor in source.list_vendors(tenant_id):
        if vendors.get(vendor.key) != vendor:
            target.put_vendor(tenant_id, vendor)
            written += 1
    return written


def _copy_chains(source: Store, target: Store, tenant_id: str, copied: Copied,
                 progress: Progress | None) -> None:
    total = source.count_chains(tenant_id)
    done = 0
    if progress:
        progress(tenant_id, done, total, copied.events)
    validity = daily.validity_of(source.list_purposes(tenant_id))
    counts: daily.Tally = {}
    for chain in source.iter_chains(tenant_id):
        events = source.subject_events(tenant_id, chain.subject_ref)
        daily.chain_tally(events, validity, counts)
        written = target.import_chain(tenant_id, chain.subject_id, events)
        copied.events += written
        if written:
            copied.chains += 1
        else:
            copied.chains_already_there += 1
        done += 1
        if progress:
            progress(tenant_id, done, total, copied.events)
    target.replace_daily_counts(tenant_id, daily.nonzero(counts))


def _copy_api_keys(source: Store, target: Store, tenant_id: str) -> int:
    keys = _pages(lambda after: source.list_api_keys(tenant_id, after, 500), lambda k: k.id)
    return _copy_credentials(((key, key.id) for key in keys), lambda key_id: target.get_api_key(tenant_id, key_id),
                             target.add_api_key, lambda key_id, at: target.revoke_api_key(tenant_id, key_id, at))


def _copy_subject_token_keys(source: Store, target: Store, tenant_id: str) -> int:
    keys = source.list_subject_token_keys(tenant_id)
    return _copy_credentials(((key, key.kid) for key in keys), target.find_subject_token_key,
                             target.add_subject_token_key,
                             lambda kid, at: target.revoke_subject_token_key(tenant_id, kid, at))


def _copy_credentials(keys: Iterable[tuple[Any, str]], find: Callable[[str], Any], add: Callable[[Any], None],
                      revoke: Callable[[str, datetime], Any]) -> int:
    """Add the (key, id) pairs the target lacks, and revoke there what the source revoked since."""
    written = 0
    for key, key_id in keys:
        there = find(key_id)
        if there is None:
            add(key)
            written += 1
        elif key.revoked_at is not None and there.revoked_at is None:
            revoke(key_id, key.revoked_at)
            written += 1
    return written


def _copy_signing_keys(source: Store, target: Store) -> int:
    written = 0
    there = {k["kid"]: k for k in target.list_signing_keys()}
    for key in source.list_signing_keys():
        have = there.get(key["kid"])
        if have is None:
            target.add_signing_key(key)
            written += 1
        elif have != key:  # retired or deactivated since the last run
            target.update_signing_key(key["kid"], {k: v for k, v in key.items() if have.get(k) != v})
            written += 1
    return written


def _pages(fetch: Callable[[Any], list[T]], cursor: Callable[[T], Any]) -> Iterator[T]:
    after = None
    while page := fetch(after):
        yield from page
        after = cursor(page[-1])


# --- verification -----------------------------------------------------------------------------------

def verify_copy(source: Store, target: Store, limit: int = 1000) -> Verdict:
    """Compare every source tenant with the target; at most `limit` mismatches are listed."""
    verdict = Verdict()

    def differs(what: str) -> None:
        if len(verdict.mismatches) < limit:
            verdict.mismatches.append(what)

    for tenant in source.iter_tenants():
        tid = tenant.id
        verdict.tenants += 1
        if target.get_tenant(tid) != tenant:
            differs(f"tenant {tid}: missing or different at the target")
        for name, read in (("purposes", lambda s, tid=tid: s.list_purposes(tid)),
                           ("policies", lambda s, tid=tid: s.list_policies(tid)),
                           ("vendors", lambda s, tid=tid: s.list_vendors(tid)),
                           ("API keys", lambda s, tid=tid: list(_pages(lambda a: s.list_api_keys(tid, a, 500),
                                                                       lambda k: k.id))),
                           ("subject-token keys", lambda s, tid=tid: s.list_subject_token_keys(tid))):
            if read(source) != read(target):
                differs(f"tenant {tid}: {name} differ")
        for ref, mine, theirs in _merge(source.iter_chains(tid), target.iter_chains(tid),
                                        lambda c: c.subject_ref):
            if mine is not None:
                verdict.chains += 1
                verdict.events += mine.events
            if mine != theirs:
                differs(f"tenant {tid}: chain {ref}: source {_head(mine)}, target {_head(theirs)}")
        for sid, at_source, at_target in _merge(source.iter_subjects(tid), target.iter_subjects(tid),
                                                lambda r: r.subject_id):
            if at_source is not None:
                verdict.subjects += 1
            if _record_head(at_source) != _record_head(at_target):
                differs(f"tenant {tid}: subject {sid}: source {_record_head(at_source)}, "
                        f"target {_record_head(at_target)}")
    there = {k["kid"]: k for k in target.list_signing_keys()}
    for key in source.list_signing_keys():
        if there.get(key["kid"]) != key:
            differs(f"signing key {key['kid']}: missing or different at the target")
    return verdict


def _merge(left: Iterator[T], right: Iterator[T], key: Callable[[T], str]) -> Iterator[tuple[str, T | None, T | None]]:
    """Walk two streams sorted by key together: (key, left item or None, right item or None)."""
    a, b = next(left, None), next(right, None)
    while a is not None or b is not None:
        if a is not None and (b is None or key(a) < key(b)):
            yield key(a), a, None
            a = next(left, None)
        elif b is not None and (a is None or key(b) < key(a)):
            yield key(b), None, b
            b = next(right, None)
        else:
            assert a is not None and b is not None
            yield key(a), a, b
            a, b = next(left, None), next(right, None)


def _head(chain: Any) -> str:
    if chain is None:
        return "absent"
    return f"subject {chain.subject_id}, {chain.events} events, seq {chain.seq}, head {chain.head_hash[:12]}"


def _record_head(record: Any) -> tuple | None:
    return None if record is None else (record.subject_ref, record.seq, record.head_hash)
