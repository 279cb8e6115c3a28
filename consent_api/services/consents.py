"""Record, withdraw, read and erase a subject's consents; every rule of DESIGN.md §3 and §8.

A request is validated against the catalog first (unknown purpose, essential refused,
archived granted, sensitive without ``separate``); rules that depend on the subject's
current record (derived action, minors) run inside the store's append, on the same
snapshot the new events are chained to. Anything refused raises before a byte is written.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from consent_api.domain.clock import format_ts
from consent_api.domain.model import (
    SUBJECT_ID,
    Action,
    ActorType,
    AgeBand,
    Kind,
    Purpose,
    SubjectRecord,
)
from consent_api.domain.projection import project
from consent_api.domain.status import (
    WITHDRAWABLE,
    Policies,
    PurposeState,
    SubjectState,
    decision_action,
    purpose_state,
    subject_state,
)
from consent_api.errors import Invalid, NotFound
from consent_api.services import webhooks
from consent_api.services.deps import Deps
from consent_api.services.idempotency import Claim
from consent_api.services.pages import Page, check_limit, decode_cursor, encode_cursor, int_cursor


@dataclass(frozen=True)
class Decision:
    purpose: str
    granted: bool
    separate: bool = False
    os_permission: str | None = None


@dataclass(frozen=True)
class Submission:
    """What a client sends with its decisions, plus the evidence the HTTP layer observed."""

    decisions: list[Decision]
    policy_version: str | None
    source: dict[str, Any]
    locale: str | None = None
    actor: dict[str, Any] | None = None
    age_band: str | None = None
    occurred_at: datetime | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    claim: Claim | None = None  # the request's Idempotency-Key, which its events carry

    @property
    def idempotency_key(self) -> str | None:
        return self.claim.key if self.claim else None


@dataclass(frozen=True)
class Recorded:
    events: list[dict[str, Any]]
    state: SubjectState
    receipt: str


def check_subject_id(subject_id: str) -> None:
    if not SUBJECT_ID.match(subject_id):
        raise Invalid.field("subject_id", "must match ^[A-Za-z0-9._:@+-]{1,128}$")


# --- writing ---------------------------------------------------------------------------------

def record(deps: Deps, tenant_id: str, subject_id: str, sub: Submission) -> Recorded:
    """Append one event per decision; 201 material."""
    check_subject_id(subject_id)
    now = deps.clock()
    purposes = purposes_by_key(deps, tenant_id)
    policies = Policies(deps.store.list_policies(tenant_id))
    _check_policy_version(policies, sub.policy_version, now)
    _check_occurred_at(deps, sub.occurred_at, now)
    _check_decisions(purposes, sub.decisions)

    def plan(current: SubjectRecord) -> list[dict[str, Any]]:
        age_band = sub.age_band or current.age_band
        _check_guardian(age_band, sub)
        drafts = []
        for d in sub.decisions:
            action = decision_action(purposes[d.purpose], d.granted, current.purposes.get(d.purpose), policies, now)
            drafts.append(draft_event(tenant_id, d.purpose, action, sub, now, age_band,
                                 separate=d.separate, os_permission=d.os_permission))
        return drafts

    return commit_events(deps, tenant_id, subject_id, plan, purposes, policies, now, sub.policy_version, sub.claim)


def withdraw_all(deps: Deps, tenant_id: str, subject_id: str, source: dict[str, Any],
                 locale: str | None, evidence: dict[str, Any], claim: Claim | None = None) -> Recorded:
    """Withdraw every non-essential purpose that is currently granted (or expired, or stale)."""
    check_subject_id(subject_id)
    now = deps.clock()
    purposes = purposes_by_key(deps, tenant_id)
    policies = Policies(deps.store.list_policies(tenant_id))
    current_policy = policies.current(now)
    version = current_policy.version if current_policy else None
    sub = Submission([], version, source, locale, evidence=evidence, claim=claim)

    def plan(current: SubjectRecord) -> list[dict[str, Any]]:
        drafts = []
        for key, rec in sorted(current.purposes.items()):
            purpose = purposes.get(key)
            if purpose is None or purpose.essential:
                continue
            if purpose_state(purpose, rec, policies, now).status in WITHDRAWABLE:
                drafts.append(draft_event(tenant_id, key, Action.WITHDRAW, sub, now, current.age_band))
        return drafts

    _require_existing(deps, tenant_id, subject_id)
    return commit_events(deps, tenant_id, subject_id, plan, purposes, policies, now, version, claim)


def record_prompts(deps: Deps, tenant_id: str, subject_id: str, purpose_keys: list[str],
                   source: dict[str, Any], locale: str | None, evidence: dict[str, Any],
                   claim: Claim | None = None,
                   os_permissions: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Record that a consent dialog was shown for these purposes (cooldown starts)."""
    check_subject_id(subject_id)
    now = deps.clock()
    purposes = purposes_by_key(deps, tenant_id)
    errors = {f"purposes.{i}": [f"unknown purpose {key!r}"]
              for i, key in enumerate(purpose_keys) if key not in purposes}
    if errors:
        raise Invalid("unknown purpose in prompts", errors=errors)
    policies = Policies(deps.store.list_policies(tenant_id))
    current_policy = policies.current(now)
    sub = Submission([], current_policy.version if current_policy else None, source, locale,
                     evidence=evidence, claim=claim)
    os_permissions = os_permissions or {}

    def plan(current: SubjectRecord) -> list[dict[str, Any]]:
        return [draft_event(tenant_id, key, Action.PROMPT, sub, now, current.age_band,
                       os_permission=os_permissions.get(key)) for key in purpose_keys]

    def shown(record: SubjectRecord, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**e, "subject_id": subject_id} for e in events]

    appended = deps.store.append(tenant_id, subject_id, plan, answer=claim.answer(shown) if claim else None)
    if claim is not None:
        claim.answered = appended.answer
    return shown(appended.record, appended.events)


def erase(deps: Deps, tenant_id: str, subject_id: str, actor_id: str | None) -> None:
    """Forget who the subject is; the chain keeps its proof under the subject_ref. Its pending
    rights requests are closed in the same append, and its privacy-center sessions end."""
    from consent_api.services import requests  # builds on this module's drafts

    current = _require_existing(deps, tenant_id, subject_id)
    now = deps.clock()
    webhooks.note_erasure(deps, tenant_id, current.subject_ref, subject_id, now)
    sub = Submission([], None, {"channel": "server"},
                     actor={"type": ActorType.AGENT, "id": actor_id, "reason": "erasure request"})
    closing = requests.closing_on_erasure(deps, tenant_id, subject_id, now, actor_id)

    def plan(current: SubjectRecord) -> list[dict[str, Any]]:
        return [*closing.drafts(current), draft_event(tenant_id, None, Action.ERASE, sub, now, None)]

    deps.store.append(tenant_id, subject_id, plan, erase=True)
    closing.finish(deps)
    deps.store.delete_sessions(tenant_id, subject_id=subject_id)
    webhooks.redact_erased(deps, tenant_id, current.subject_ref)


def commit_events(deps: Deps, tenant_id: str, subject_id: str, plan, purposes: dict[str, Purpose],
                  policies: Policies, now: datetime, policy_version: str | None,
                  claim: Claim | None = None) -> Recorded:
    """Append plan's events; the events, the state after them and a signed receipt. With a
    claim, its answer is made from the same Recorded and kept with the events."""

    def recorded(record: SubjectRecord, stored: list[dict[str, Any]]) -> Recorded:
        events = [{**e, "subject_id": subject_id} for e in stored]
        state = subject_state(subject_id, record, list(purposes.values()), policies, now)
        receipt = deps.keys.sign({
            "iss": deps.issuer, "sub": subject_id, "iat": int(now.timestamp()),
            "jti": str(uuid.uuid4()), "tenant_id": tenant_id, "policy_version": policy_version,
            "decisions": [
                {"purpose": e["purpose"], "granted": e["action"] == Action.GRANT,
                 "action": e["action"], "event_id": e["event_id"], "hash": e["hash"]}
                for e in events
            ],
        })
        made.append(Recorded(events, state, receipt))
        return made[-1]

    made: list[Recorded] = []
    appended = deps.store.append(tenant_id, subject_id, plan, answer=claim.answer(recorded) if claim else None)
    if claim is not None and appended.answer is not None:
        claim.answered = appended.answer
        return made[-1]  # the store renders once per sealing: the last is the one it committed
    return recorded(appended.record, appended.events)


def draft_event(tenant_id: str, purpose: str | None, action: str, sub: Submission, now: datetime,
           age_band: str | None, *, separate: bool = False,
           os_permission: str | None = None) -> dict[str, Any]:
    source = sub.source or {}
    actor = sub.actor or {}
    return {
        "event_id": str(uuid.uuid4()),
        "tenant_id": tenant_id,
        "purpose": purpose,
        "action": str(action),
        "policy_version": sub.policy_version,
        "occurred_at": format_ts(sub.occurred_at or now),
        "recorded_at": format_ts(now),
        "source": {
            "channel": source.get("channel"),
            "collection_point": source.get("collection_point"),
            "ui_text_sha256": source.get("ui_text_sha256"),
            "sdk_version": source.get("sdk_version"),
        },
        "locale": sub.locale,
        "separate": bool(separate),
        "actor": {"type": str(actor.get("type") or ActorType.SELF), "id": actor.get("id"),
                  "reason": actor.get("reason")},
        "age_band": age_band,
        "os_permission": os_permission,
        "evidence": {"ip_prefix": None, "user_agent_sha256": None, **(sub.evidence or {})},
        "idempotency_key": sub.idempotency_key,
    }


def purposes_by_key(deps: Deps, tenant_id: str) -> dict[str, Purpose]:
    return {p.key: p for p in deps.store.list_purposes(tenant_id)}


def _check_policy_version(policies: Policies, version: str | None, now: datetime) -> None:
    policy = policies.get(version)
    if policy is None:
        raise Invalid.field("policy_version", f"unknown policy version {version!r}; publish it first")
    if policy.effective_at > now:
        raise Invalid.field("policy_version",
                            f"policy version {version!r} takes effect at {format_ts(policy.effective_at)}")


def _check_occurred_at(deps: Deps, occurred_at: datetime | None, now: datetime) -> None:
    if occurred_at is not None and occurred_at > now + timedelta(seconds=deps.clock_skew_s):
        raise Invalid.field("occurred_at", f"lies more than {deps.clock_skew_s} s in the future")


def _check_decisions(purposes: dict[str, Purpose], decisions: list[Decision]) -> None:
    errors: dict[str, list[str]] = {}
    named: list[str] = []
    for i, d in enumerate(decisions):
        purpose = purposes.get(d.purpose)
        at = f"decisions.{i}"
        if purpose is None:
            errors[f"{at}.purpose"] = [f"unknown purpose {d.purpose!r}"]
        elif purpose.essential and not d.granted:
            errors[f"{at}.granted"] = [f"{d.purpose!r} is essential and cannot be refused or withdrawn"]
        elif d.granted and purpose.archived:
            errors[f"{at}.purpose"] = [f"{d.purpose!r} is archived and takes no new grants"]
        elif d.granted and purpose.needs_separate and not d.separate:
            errors[f"{at}.separate"] = [
                f"{d.purpose!r} is sensitive: ask for it on its own screen and send separate: true"]
        elif d.os_permission is not None and purpose.kind != Kind.DEVICE_PERMISSION:
            errors[f"{at}.os_permission"] = [f"{d.purpose!r} is not a device permission"]
        else:
            continue
        named.append(d.purpose)
    if errors:
        raise Invalid("refused decisions for " + ", ".join(repr(n) for n in named), errors=errors)


def _check_guardian(age_band: str | None, sub: Submission) -> None:
    if age_band != AgeBand.UNDER_14 or not any(d.granted for d in sub.decisions):
        return
    actor = sub.actor or {}
    if actor.get("type") != ActorType.GUARDIAN or not actor.get("id"):
        raise Invalid.field("actor", "the subject is under 14: a grant needs actor {type: guardian, id}")


def _require_existing(deps: Deps, tenant_id: str, subject_id: str) -> SubjectRecord:
    check_subject_id(subject_id)
    current = deps.store.get_subject(tenant_id, subject_id)
    if current is None:
        raise NotFound("unknown subject")
    return current


# --- reading ---------------------------------------------------------------------------------

def state(deps: Deps, tenant_id: str, subject_id: str, at: datetime | None = None) -> SubjectState:
    """The subject's state now, or as the ledger shows it at a past moment."""
    current = _require_existing(deps, tenant_id, subject_id)
    now = deps.clock()
    if at is not None:
        if at > now:
            raise Invalid.field("at", "must not lie in the future")
        cutoff = format_ts(at)
        events = [e for e in deps.store.subject_events(tenant_id, current.subject_ref)
                  if e["recorded_at"] <= cutoff]
        current, now = project(subject_id, current.subject_ref, events), at
    return subject_state(subject_id, current, deps.store.list_purposes(tenant_id),
                         Policies(deps.store.list_policies(tenant_id)), now)


def one_purpose(deps: Deps, tenant_id: str, subject_id: str, key: str) -> PurposeState:
    """The hot path: one purpose of one subject (reads only that purpose's record)."""
    check_subject_id(subject_id)
    purpose = deps.store.get_purpose(tenant_id, key)
    if purpose is None:
        raise NotFound(f"unknown purpose {key!r}")
    found = deps.store.purpose_records(tenant_id, (subject_id,), key)
    if subject_id not in found:
        raise NotFound("unknown subject")
    return purpose_state(purpose, found[subject_id],
                         Policies(deps.store.list_policies(tenant_id)), deps.clock())


def history(deps: Deps, tenant_id: str, subject_id: str, cursor: str | None,
            limit: int | None) -> Page[dict[str, Any]]:
    current = _require_existing(deps, tenant_id, subject_id)
    limit = check_limit(limit)
    after = int_cursor(decode_cursor(cursor) or 0)
    events = deps.store.subject_events(tenant_id, current.subject_ref, after, limit + 1)
    more = len(events) > limit
    events = [{**e, "subject_id": subject_id} for e in events[:limit]]
    return Page(events, encode_cursor(events[-1]["seq"]) if more else None)


def consent_token(deps: Deps, tenant_id: str, subject_id: str) -> tuple[str, datetime]:
    """A short-lived signed list of allowed purposes, for checks without a call per message."""
    current = state(deps, tenant_id, subject_id)
    iat = int(deps.clock().timestamp())
    expires = datetime.fromtimestamp(iat + deps.consent_token_ttl_s, timezone.utc)
    token = deps.keys.sign({
        "iss": deps.issuer, "sub": subject_id, "iat": iat,
        "exp": iat + deps.consent_token_ttl_s, "tenant_id": tenant_id,
        "allowed": sorted(k for k, s in current.purposes.items() if s.allowed),
    })
    return token, expires
