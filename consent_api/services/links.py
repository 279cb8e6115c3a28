"""Carry a web visitor's decisions, made before sign-in under an anonymous id, over to the
account subject they signed in as.

Merge rule: the most recent decision per purpose wins. For every purpose the anonymous
subject decided on, its last decision (grant, deny or withdraw) is carried over when the
account subject has no decision on that purpose or an older one, compared by ``recorded_at``;
on a tie the account's own decision stays. A carried decision is a new event in the account's
chain: its action is derived as for any decision (``granted: false`` on a granted purpose is a
``withdraw``), it keeps the anonymous decision's policy version, ``occurred_at``, locale and
evidence, and its ``source`` is ``{channel: web, collection_point: "link:<event_id of the
anonymous decision>"}``. The anonymous subject is only read: both chains stay intact, and
linking again carries over only what the anonymous subject decided since.

The rules hold as for any decision: a grant for an under-14 account, or of a purpose that is
sensitive without the anonymous decision having been made separately, refuses the whole link
(422, nothing written). Grants of purposes archived since are not carried (archived purposes
take no new grants); refusals of them are.
"""

from __future__ import annotations

from typing import Any

from consent_api.domain.clock import parse_ts
from consent_api.domain.model import ANONYMOUS_PREFIX, Action, AgeBand, SubjectRecord
from consent_api.domain.projection import DECISIONS
from consent_api.domain.status import Policies, decision_action
from consent_api.errors import Invalid
from consent_api.services.consents import (
    Recorded,
    Submission,
    check_subject_id,
    commit_events,
    draft_event,
    purposes_by_key,
)
from consent_api.services.deps import Deps
from consent_api.services.idempotency import Claim

LINK_POINT = "link:"
FIELD = "anonymous_subject_id"


def link(deps: Deps, tenant_id: str, subject_id: str, anonymous_subject_id: str,
         claim: Claim | None = None) -> Recorded:
    """Append to ``subject_id`` the anonymous subject's decisions that are newer than its own."""
    check_subject_id(subject_id)
    check_subject_id(anonymous_subject_id)
    if not anonymous_subject_id.startswith(ANONYMOUS_PREFIX):
        raise Invalid.field(FIELD, "only anonymous web subjects (anon-...) are linked to an account")
    if anonymous_subject_id == subject_id:
        raise Invalid.field(FIELD, "a subject cannot be linked to itself")
    now = deps.clock()
    purposes = purposes_by_key(deps, tenant_id)
    policies = Policies(deps.store.list_policies(tenant_id))
    current_policy = policies.current(now)
    version = current_policy.version if current_policy else None
    last = _last_decisions(deps, tenant_id, anonymous_subject_id)

    def plan(account: SubjectRecord) -> list[dict[str, Any]]:
        drafts, refused = [], {}
        for key, anon_event in sorted(last.items()):
            purpose = purposes.get(key)
            mine = account.purposes.get(key)
            if purpose is None or (mine and mine.decided_at and mine.decided_at >= anon_event["recorded_at"]):
                continue
            granted = anon_event["action"] == Action.GRANT
            if granted and purpose.archived:
                continue
            if granted and account.age_band == AgeBand.UNDER_14:
                refused[key] = "the account is under 14: a grant needs a guardian and is not carried over"
            elif granted and purpose.needs_separate and not anon_event.get("separate"):
                refused[key] = "sensitive: ask for it on its own screen, it is not carried over"
            action = decision_action(purpose, granted, mine, policies, now)
            drafts.append(draft_event(tenant_id, key, action, _carried(anon_event, claim), now,
                                 account.age_band, separate=bool(anon_event.get("separate"))))
        if refused:
            raise Invalid("the link would carry decisions the rules refuse: " + ", ".join(refused),
                          errors={f"{FIELD}.{key}": [why] for key, why in refused.items()})
        return drafts

    return commit_events(deps, tenant_id, subject_id, plan, purposes, policies, now, version, claim)


def _last_decisions(deps: Deps, tenant_id: str, anonymous_subject_id: str) -> dict[str, dict[str, Any]]:
    """The anonymous subject's last decision event per purpose ({} for an unknown subject)."""
    anon = deps.store.get_subject(tenant_id, anonymous_subject_id)
    if anon is None:
        return {}
    wanted = {rec.event_id for rec in anon.purposes.values() if rec.action in DECISIONS and rec.event_id}
    return {e["purpose"]: e for e in deps.store.subject_events(tenant_id, anon.subject_ref)
            if e["event_id"] in wanted}


def _carried(event: dict[str, Any], claim: Claim | None) -> Submission:
    """What the carried event keeps of the anonymous decision it copies."""
    source = event.get("source") or {}
    return Submission(
        decisions=[], policy_version=event.get("policy_version"),
        source={"channel": "web", "collection_point": LINK_POINT + event["event_id"],
                "ui_text_sha256": source.get("ui_text_sha256"), "sdk_version": source.get("sdk_version")},
        locale=event.get("locale"), actor=event.get("actor"),
        occurred_at=parse_ts(event["occurred_at"]) if event.get("occurred_at") else None,
        evidence=dict(event.get("evidence") or {}), claim=claim,
    )
