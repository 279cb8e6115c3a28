"""Bulk checks and audiences, for push and marketing systems that filter lists before a send."""

from __future__ import annotations

from collections.abc import Sequence

from consent_api.domain.status import Policies, purpose_state
from consent_api.errors import Invalid, NotFound
from consent_api.services.deps import Deps
from consent_api.services.pages import Page, check_limit, decode_cursor, encode_cursor

MAX_SUBJECTS = 1000


def check(deps: Deps, tenant_id: str, purpose_key: str, subject_ids: Sequence[str]) -> dict[str, bool]:
    """Is purpose allowed for each subject? Unknown subjects are simply not allowed."""
    if len(subject_ids) > MAX_SUBJECTS:
        raise Invalid.field("subject_ids", f"at most {MAX_SUBJECTS} subject ids per call")
    purpose = deps.store.get_purpose(tenant_id, purpose_key)
    if purpose is None:
        raise Invalid.field("purpose", f"unknown purpose {purpose_key!r}")
    policies = Policies(deps.store.list_policies(tenant_id))
    now = deps.clock()
    known = deps.store.purpose_records(tenant_id, subject_ids, purpose_key)
    results = {}
    for subject_id in subject_ids:
        results[subject_id] = subject_id in known and purpose_state(
            purpose, known[subject_id], policies, now).allowed
    return results


def audience(deps: Deps, tenant_id: str, purpose_key: str, cursor: str | None,
             limit: int | None) -> Page[str]:
    """Subject ids for whom purpose is allowed now, ordered by id."""
    limit = check_limit(limit)
    after = decode_cursor(cursor)
    if after is not None and not isinstance(after, str):
        raise Invalid.field("cursor", "not a cursor returned by this API")
    purpose = deps.store.get_purpose(tenant_id, purpose_key)
    if purpose is None:
        raise NotFound(f"unknown purpose {purpose_key!r}")
    policies = Policies(deps.store.list_policies(tenant_id))
    now = deps.clock()
    found: list[str] = []
    while len(found) <= limit:
        if purpose.essential:
            batch = deps.store.list_subjects(tenant_id, after, limit + 1)
        else:
            batch = deps.store.allowed_candidates(tenant_id, purpose_key, after, limit + 1)
        if not batch:
            break
        for rec in batch:
            if purpose_state(purpose, rec.purposes.get(purpose_key), policies, now).allowed:
                found.append(rec.subject_id)
        after = batch[-1].subject_id
    more = len(found) > limit
    found = found[:limit]
    return Page(found, encode_cursor(found[-1]) if more else None)
