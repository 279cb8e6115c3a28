"""The privacy center (DESIGN.md §9.3): a person's own page, opened by a one-time link their app
made, showing and changing only that person's consents through the same services as the API.

One-time links: the code is ``secrets.token_urlsafe(32)``, stored as its sha256, valid
LINK_TTL, consumed atomically by the store, so it opens at most one session.

Saving switches: the switches that differ from ``allowed`` are the decisions. A sensitive purpose
(or a cross-border transfer) switched on is recorded only after its own confirmation step
(PIPL art. 29, separate consent), one purpose at a time; until every such purpose is confirmed
or declined nothing is recorded. The decisions then go through ``consents.record`` with
``source {channel: web, collection_point: privacy_center}``, so the rules for minors, archived
purposes and separate consent, the events and the receipt are the API's own.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from consent_api.domain.model import AgeBand, LinkCode, PolicyVersion, Purpose, Tenant
from consent_api.domain.requests import RightsRequest
from consent_api.domain.status import Policies, PurposeState, SubjectState, subject_state
from consent_api.errors import Gone, Invalid, NotFound
from consent_api.services import consents, requests
from consent_api.services.consents import Decision, Recorded, Submission, check_subject_id
from consent_api.services.deps import Deps
from consent_api.store.port import RequestFilter

LINK_TTL = timedelta(minutes=10)
MAX_CODE_LENGTH = 256
SOURCE = {"channel": "web", "collection_point": "privacy_center"}


# --- one-time links ------------------------------------------------------------------------------

def code_hash(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


def make_link(deps: Deps, tenant_id: str, subject_id: str) -> tuple[str, datetime]:
    """A new one-time code for this subject's privacy center, and when it expires."""
    check_subject_id(subject_id)
    now = deps.clock()
    code = secrets.token_urlsafe(32)
    expires_at = now + LINK_TTL
    deps.store.add_link_code(LinkCode(code_hash(code), tenant_id, subject_id, now, expires_at))
    return code, expires_at


def exchange(deps: Deps, code: str) -> LinkCode:
    """The tenant and subject a code opens, consuming it; Gone when used, expired or unknown."""
    found = None
    if 0 < len(code) <= MAX_CODE_LENGTH:
        found = deps.store.consume_link_code(code_hash(code), deps.clock())
    if found is None or deps.store.get_tenant(found.tenant_id) is None:
        raise Gone("this link was used already, has expired, or never existed")
    return found


# --- what the page shows ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Choice:
    """One purpose as the person sees it."""

    purpose: Purpose
    state: PurposeState
    decidable: bool  # a switch they may move (not essential; an archived one only while it is on)


@dataclass(frozen=True)
class Overview:
    tenant: Tenant
    subject_id: str
    state: SubjectState
    choices: list[Choice]
    policy: PolicyVersion | None
    known: bool  # the subject has events

    @property
    def under_14(self) -> bool:
        return self.state.age_band == AgeBand.UNDER_14


def text_in(texts: dict[str, str], locale: str) -> str:
    """A localized text: the locale's, else English, else Chinese, else any."""
    for wanted in (locale, "en", "zh-CN"):
        if texts.get(wanted):
            return texts[wanted]
    return next(iter(texts.values()), "")


def overview(deps: Deps, tenant_id: str, subject_id: str) -> Overview:
    tenant = deps.store.get_tenant(tenant_id)
    if tenant is None:
        raise NotFound("unknown tenant")
    now = deps.clock()
    purposes = {p.key: p for p in deps.store.list_purposes(tenant_id)}
    policies = Policies(deps.store.list_policies(tenant_id))
    record = deps.store.get_subject(tenant_id, subject_id)
    state = subject_state(subject_id, record, list(purposes.values()), policies, now)
    choices = [Choice(purposes[key], s, not purposes[key].essential and not (s.archived and not s.allowed))
               for key, s in state.purposes.items()]
    choices.sort(key=lambda c: (not c.decidable, c.purpose.essential, c.purpose.key))
    return Overview(tenant, subject_id, state, choices, policies.current(now), record is not None)


# --- changing consents ------------------------------------------------------------------------------

@dataclass(frozen=True)
class NeedsSeparate:
    """The next sensitive purpose to confirm on its own step; nothing was recorded."""

    purpose: Purpose
    desired: frozenset[str]
    confirmed: frozenset[str]


@dataclass(frozen=True)
class Saved:
    recorded: Recorded | None  # None: the switches were as they stood, nothing to record


def shown_text_sha256(purposes: Iterable[Purpose], locale: str) -> str:
    """Evidence of what the person read: the titles and descriptions shown, in their locale."""
    text = "\n".join(f"{p.key}\n{text_in(p.title, locale)}\n{text_in(p.description, locale)}" for p in purposes)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def save(deps: Deps, tenant_id: str, subject_id: str, desired: Iterable[str], confirmed: Iterable[str],
         locale: str, evidence: dict[str, Any]) -> Saved | NeedsSeparate:
    """Record the switches that changed, once every sensitive one switched on is confirmed."""
    want, sure = frozenset(desired), frozenset(confirmed)
    current = overview(deps, tenant_id, subject_id)
    changes = [(c.purpose, c.purpose.key in want) for c in current.choices
               if c.decidable and (c.purpose.key in want) != c.state.allowed]
    for purpose, on in changes:
        if on and purpose.needs_separate and purpose.key not in sure:
            return NeedsSeparate(purpose, want, sure)
    if not changes:
        return Saved(None)
    if current.policy is None:
        raise Invalid("no privacy policy is in effect yet, so no consent can be recorded")
    source = {**SOURCE, "ui_text_sha256": shown_text_sha256((p for p, _ in changes), locale)}
    decisions = [Decision(p.key, on, separate=on and p.needs_separate) for p, on in changes]
    submission = Submission(decisions, current.policy.version, source, locale, evidence=evidence)
    return Saved(consents.record(deps, tenant_id, subject_id, submission))


def withdraw_all(deps: Deps, tenant_id: str, subject_id: str, locale: str, evidence: dict[str, Any]) -> Saved:
    """Withdraw every non-essential grant; nothing to do for a subject without events."""
    if deps.store.get_subject(tenant_id, subject_id) is None:
        return Saved(None)
    result = consents.withdraw_all(deps, tenant_id, subject_id, dict(SOURCE), locale, evidence, None)
    return Saved(result if result.events else None)


# --- the person's record ------------------------------------------------------------------------------

@dataclass(frozen=True)
class PersonalRecord:
    overview: Overview
    events: list[dict[str, Any]]  # oldest first, subject_id filled in
    requests: list[RightsRequest]
    generated_at: datetime


def personal_record(deps: Deps, tenant_id: str, subject_id: str) -> PersonalRecord:
    """Everything we hold about the person: their consents now, every event, every request."""
    current = overview(deps, tenant_id, subject_id)
    record = deps.store.get_subject(tenant_id, subject_id)
    events = ([{**e, "subject_id": subject_id} for e in deps.store.subject_events(tenant_id, record.subject_ref)]
              if record is not None else [])
    return PersonalRecord(current, events, all_requests(deps, tenant_id, subject_id), deps.clock())


def all_requests(deps: Deps, tenant_id: str, subject_id: str) -> list[RightsRequest]:
    return list(requests.every_request(deps, tenant_id, RequestFilter(subject_id=subject_id)))
