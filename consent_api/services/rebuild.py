"""rebuild-state: recompute every subject record, and every tenant's per-day counters
(services/stats.py), from the ledger and report what differed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from consent_api.domain.ledger import verify_chain
from consent_api.domain.projection import project
from consent_api.services import stats
from consent_api.store.port import Store


@dataclass(frozen=True)
class Difference:
    tenant_id: str
    subject_id: str
    fields: tuple[str, ...]


@dataclass
class RebuildReport:
    subjects: int = 0
    differences: list[Difference] = field(default_factory=list)
    broken_chains: list[str] = field(default_factory=list)
    count_differences: list[str] = field(default_factory=list)  # per-day counter rows


def rebuild_state(store: Store, *, fix: bool = True,
                  progress: Callable[[int], None] | None = None) -> RebuildReport:
    report = RebuildReport()
    for tenant_id, record in _all_records(store):
        events = store.subject_events(tenant_id, record.subject_ref)
        _, problem = verify_chain(events)
        if problem:
            report.broken_chains.append(f"{tenant_id}/{record.subject_ref}: {problem}")
        rebuilt = project(record.subject_id, record.subject_ref, events)
        changed = tuple(name for name in ("seq", "head_hash", "age_band", "purposes", "updated_at")
                        if getattr(rebuilt, name) != getattr(record, name))
        if changed:
            report.differences.append(Difference(tenant_id, record.subject_id, changed))
            if fix:
                store.replace_record(tenant_id, rebuilt)
        report.subjects += 1
        if progress:
            progress(report.subjects)
    for tenant in store.iter_tenants():
        recounted = stats.recount(store, tenant.id)
        found = stats.differences(tenant.id, stats.stored(store, tenant.id), recounted)
        report.count_differences += found
        if found and fix:
            store.replace_daily_counts(tenant.id, recounted)
    return report


def _all_records(store: Store) -> Iterator:
    for tenant in store.iter_tenants():
        for record in store.iter_subjects(tenant.id):
            yield tenant.id, record
