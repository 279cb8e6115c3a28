"""Fold a subject's events into its SubjectRecord; the stored state is only a cache of this."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from consent_api.domain.model import Action, PurposeRecord, SubjectRecord

DECISIONS = (Action.GRANT, Action.DENY, Action.WITHDRAW)


def apply_event(record: SubjectRecord, event: dict[str, Any]) -> SubjectRecord:
    purposes = dict(record.purposes)
    key = event.get("purpose")
    action = event["action"]
    if key is not None:
        current = purposes.get(key, PurposeRecord())
        os_permission = event.get("os_permission") or current.os_permission
        if action in DECISIONS:
            purposes[key] = PurposeRecord(
                action=action,
                decided_at=event["recorded_at"],
                policy_version=event.get("policy_version"),
                event_id=event["event_id"],
                prompted_at=current.prompted_at,
                os_permission=os_permission,
            )
        elif action == Action.PROMPT:
            purposes[key] = PurposeRecord(
                action=current.action,
                decided_at=current.decided_at,
                policy_version=current.policy_version,
                event_id=current.event_id,
                prompted_at=event["recorded_at"],
                os_permission=os_permission,
            )
    return record.with_changes(
        seq=event["seq"],
        head_hash=event["hash"],
        age_band=event.get("age_band") or record.age_band,
        purposes=purposes,
        updated_at=event["recorded_at"],
    )


def apply_events(record: SubjectRecord, events: Iterable[dict[str, Any]]) -> SubjectRecord:
    for event in events:
        record = apply_event(record, event)
    return record


def project(subject_id: str, subject_ref: str, events: Iterable[dict[str, Any]]) -> SubjectRecord:
    """Rebuild a record from nothing but its events (used by rebuild-state and ``at=``)."""
    return apply_events(SubjectRecord(subject_id=subject_id, subject_ref=subject_ref), events)
