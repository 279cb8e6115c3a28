"""Derive what a subject's decisions mean now: status, allowed, can_prompt, next_prompt_at.

Order of the rules for a purpose (all times are server ``recorded_at``):
  essential                      -> granted, allowed, never prompted
  no decision                    -> not_asked
  last decision deny / withdraw  -> denied / withdrawn
  grant older than validity_days -> expired
  grant under a policy older than a material policy now in effect -> reconsent_required
  otherwise grant                -> granted (the only status besides essential that allows)
Cooldown: a deny, a withdraw, or a prompt not followed by a grant starts
``reprompt_after_hours``; a material policy taking effect after it ends it early.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from consent_api.domain.clock import format_ts, parse_ts
from consent_api.domain.model import (
    Action,
    OsPermission,
    PolicyVersion,
    Purpose,
    PurposeRecord,
    Status,
    SubjectRecord,
)


@dataclass(frozen=True)
class PurposeState:
    purpose: str
    status: Status
    allowed: bool
    updated_at: str | None
    policy_version: str | None
    expires_at: str | None
    can_prompt: bool
    next_prompt_at: str | None
    archived: bool = False
    os_permission: str | None = None
    os_permission_mismatch: bool = False


@dataclass(frozen=True)
class SubjectState:
    subject_id: str
    policy_version: str | None
    needs_reconsent: bool
    age_band: str | None
    purposes: dict[str, PurposeState]


class Policies:
    """A tenant's policy versions, answering 'which is in effect' at a given time."""

    def __init__(self, versions: Sequence[PolicyVersion]):
        self._by_version = {p.version: p for p in versions}
        self._ordered = sorted(versions, key=lambda p: (p.effective_at, p.version))

    def get(self, version: str | None) -> PolicyVersion | None:
        return self._by_version.get(version) if version else None

    def current(self, now: datetime) -> PolicyVersion | None:
        effective = [p for p in self._ordered if p.effective_at <= now]
        return effective[-1] if effective else None

    def material_after(self, since: datetime, now: datetime) -> bool:
        """Has a material version taken effect in (since, now]?"""
        return any(p.material and since < p.effective_at <= now for p in self._ordered)


_NOT_ASKED = PurposeRecord()


def purpose_state(
    purpose: Purpose, record: PurposeRecord | None, policies: Policies, now: datetime
) -> PurposeState:
    record = record or _NOT_ASKED
    os_permission = record.os_permission
    if purpose.essential:
        return PurposeState(
            purpose.key, Status.GRANTED, True, record.decided_at, record.policy_version,
            None, False, None, purpose.archived, os_permission, False,
        )
    status, expires_at = _status(purpose, record, policies, now)
    allowed = status == Status.GRANTED
    can_prompt, next_prompt_at = _prompting(purpose, record, status, policies, now)
    mismatch = os_permission == OsPermission.GRANTED and not allowed
    return PurposeState(
        purpose.key, status, allowed, record.decided_at, record.policy_version,
        format_ts(expires_at) if expires_at else None, can_prompt,
        format_ts(next_prompt_at) if next_prompt_at else None,
        purpose.archived, os_permission, mismatch,
    )


def _status(
    purpose: Purpose, record: PurposeRecord, policies: Policies, now: datetime
) -> tuple[Status, datetime | None]:
    if record.action is None:
        return Status.NOT_ASKED, None
    if record.action == Action.DENY:
        return Status.DENIED, None
    if record.action == Action.WITHDRAW:
        return Status.WITHDRAWN, None
    expires_at = None
    if purpose.validity_days is not None:
        assert record.decided_at is not None  # a decision has its time
        expires_at = parse_ts(record.decided_at) + timedelta(days=purpose.validity_days)
        if now >= expires_at:
            return Status.EXPIRED, expires_at
    granted_under = policies.get(record.policy_version)
    if granted_under is not None and policies.material_after(granted_under.effective_at, now):
        return Status.RECONSENT_REQUIRED, expires_at
    return Status.GRANTED, expires_at


def _prompting(
    purpose: Purpose, record: PurposeRecord, status: Status, policies: Policies, now: datetime
) -> tuple[bool, datetime | None]:
    if status == Status.GRANTED:
        return False, None
    starts = []
    if record.action in (Action.DENY, Action.WITHDRAW) and record.decided_at is not None:
        starts.append(parse_ts(record.decided_at))
    if record.prompted_at and not (
        record.action == Action.GRANT and (record.decided_at or "") >= record.prompted_at
    ):
        starts.append(parse_ts(record.prompted_at))
    if not starts:
        return True, None
    began = max(starts)
    ends = began + timedelta(hours=purpose.reprompt_after_hours)
    if now >= ends or policies.material_after(began, now):
        return True, None
    return False, ends


def subject_state(
    subject_id: str,
    record: SubjectRecord | None,
    purposes: Sequence[Purpose],
    policies: Policies,
    now: datetime,
) -> SubjectState:
    """Every non-archived purpose, plus archived ones this subject decided on."""
    records = record.purposes if record else {}
    states = {}
    for purpose in purposes:
        if purpose.archived and purpose.key not in records:
            continue
        states[purpose.key] = purpose_state(purpose, records.get(purpose.key), policies, now)
    current = policies.current(now)
    return SubjectState(
        subject_id=subject_id,
        policy_version=current.version if current else None,
        needs_reconsent=any(s.status == Status.RECONSENT_REQUIRED for s in states.values()),
        age_band=record.age_band if record else None,
        purposes=states,
    )


# A refusal of a purpose in one of these states takes something back: it is a withdrawal.
WITHDRAWABLE = (Status.GRANTED, Status.EXPIRED, Status.RECONSENT_REQUIRED)


def decision_action(purpose: Purpose, granted: bool, current: PurposeRecord | None, policies: Policies,
                    now: datetime) -> Action:
    """DESIGN.md §3: ``granted: true`` is a grant; ``granted: false`` is a withdraw after a grant
    (still in force, expired or stale), otherwise a deny."""
    if granted:
        return Action.GRANT
    status = purpose_state(purpose, current, policies, now).status
    return Action.WITHDRAW if status in WITHDRAWABLE else Action.DENY
