"""Rights requests: open, read, list and answer them on time, with proof in the ledger
(domain/requests.py says which events; domain/deadlines.py when a request is due).

Order of writes: opening appends ``request_opened`` to the subject's chain, then stores the
request; every later change is first a compare-and-set on the stored request (so of two
concurrent answers, or two schedulers marking the same notice, exactly one wins) and then its
event. ``tick`` is the scheduler's round: it marks pending requests ``due_soon`` (DUE_SOON_DAYS
counted days or fewer left) and ``overdue`` (due_at passed), once each.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from consent_api.domain import deadlines
from consent_api.domain.clock import format_ts, parse_ts
from consent_api.domain.deadlines import DayCount, Deadline
from consent_api.domain.model import ActorType, SubjectRecord
from consent_api.domain.requests import (
    DUE_SOON_DAYS,
    PENDING,
    Notice,
    RequestAction,
    RequestStatus,
    RequestType,
    RightsRequest,
    action_for,
)
from consent_api.errors import Conflict, Invalid, NotFound
from consent_api.services.consents import Submission, check_subject_id, draft_event
from consent_api.services.deps import Deps
from consent_api.services.pages import Page, check_limit, decode_cursor, encode_cursor
from consent_api.store.port import RequestFilter

SETTINGS_KEY = "request_deadline"
ANSWERS = (RequestStatus.IN_PROGRESS, RequestStatus.COMPLETED, RequestStatus.REJECTED)
SCHEDULER = "consent_api:scheduler"  # the actor id of the scheduler's notices
# Requests due within this horizon are looked at by a tick: the longest stretch of days not
# counted (a Golden Week joined to a weekend) is shorter.
LOOKAHEAD = timedelta(days=31)
ERASED_REASON = "the subject's data was erased before this request was answered"


@dataclass(frozen=True)
class Origin:
    """Who made a change and through what, as the event records it."""

    source: dict[str, Any]
    actor: dict[str, Any]
    locale: str | None = None
    evidence: dict[str, Any] | None = None


# --- settings --------------------------------------------------------------------------------------

def deadline(deps: Deps, tenant_id: str) -> Deadline:
    """The tenant's answer period (15 PRC working days unless it set another)."""
    stored = deps.store.get_settings(tenant_id).get(SETTINGS_KEY)
    return Deadline(**stored) if stored else Deadline()


def get_settings(deps: Deps, tenant_id: str) -> dict[str, Any]:
    return {SETTINGS_KEY: deadline(deps, tenant_id).to_dict()}


def put_settings(deps: Deps, tenant_id: str, request_deadline: dict[str, Any]) -> dict[str, Any]:
    """Set the answer period for requests opened from now on (open ones keep their due_at)."""
    days, calendar = request_deadline.get("days"), request_deadline.get("calendar")
    if type(days) is not int or not 1 <= days <= deadlines.MAX_DAYS:
        raise Invalid.field("request_deadline.days", f"a whole number of days from 1 to {deadlines.MAX_DAYS}")
    if calendar not in tuple(DayCount):
        raise Invalid.field("request_deadline.calendar", "one of cn_workdays, calendar_days")
    stored = deps.store.get_settings(tenant_id)
    deps.store.put_settings(tenant_id, {**stored, SETTINGS_KEY: Deadline(days, calendar).to_dict()})
    return get_settings(deps, tenant_id)


# --- opening and answering -----------------------------------------------------------------------------

def open_request(deps: Deps, tenant_id: str, subject_id: str, request_type: str, details: str | None,
                 origin: Origin, channel: str | None = None) -> RightsRequest:
    """A new request of the subject (known or not yet), due by the tenant's deadline."""
    check_subject_id(subject_id)
    if request_type not in tuple(RequestType):
        raise Invalid.field("type", "one of " + ", ".join(RequestType))
    now = deps.clock()
    due = deadlines.due(now, deadline(deps, tenant_id))
    request = RightsRequest(
        id="req_" + secrets.token_hex(12), tenant_id=tenant_id, subject_id=subject_id, type=request_type,
        status=RequestStatus.OPEN, created_at=now, due_at=due.at, updated_at=now,
        due_at_estimated=due.estimated, details=details, channel=channel or origin.source.get("channel"))
    _append(deps, request, RequestAction.OPENED, origin, now)
    deps.store.add_request(request)
    return request


def answer(deps: Deps, tenant_id: str, request_id: str, status: str, note: str | None, reason: str | None,
           origin: Origin) -> RightsRequest:
    """Move a request on: in_progress, or the final completed / rejected (409 once final)."""
    if status not in ANSWERS:
        raise Invalid.field("status", "one of in_progress, completed, rejected")
    if status == RequestStatus.REJECTED and not (reason and reason.strip()):
        raise Invalid.field("reason", "say why the request is rejected")
    request = get(deps, tenant_id, request_id)
    if request.final:
        raise Conflict(f"request {request_id} is {request.status}: completed and rejected are final")
    if request.subject_id is None:
        raise Conflict(f"request {request_id}: its subject was erased")
    now = deps.clock()
    changed = request.changed(status=status, note=note if note is not None else request.note,
                              reason=reason if status == RequestStatus.REJECTED else request.reason,
                              updated_at=now)
    if not deps.store.replace_request(changed, request.version):
        raise Conflict(f"request {request_id} was changed at the same time; read it again")
    _append(deps, changed, action_for(status), origin, now)
    return changed


def _append(deps: Deps, request: RightsRequest, action: RequestAction, origin: Origin, now: datetime,
            notice: str | None = None) -> None:
    assert request.subject_id is not None
    deps.store.append(request.tenant_id, request.subject_id,
                      lambda current: [request_draft(request, action, origin, now, current, notice)])


def request_draft(request: RightsRequest, action: RequestAction, origin: Origin, now: datetime,
                  current: SubjectRecord, notice: str | None = None) -> dict[str, Any]:
    """The ledger event of a request's change (purpose null; the request's fields on top)."""
    sub = Submission([], None, origin.source, origin.locale, origin.actor, evidence=dict(origin.evidence or {}))
    draft = draft_event(request.tenant_id, None, action, sub, now, current.age_band)
    draft.update(request_id=request.id, request_type=request.type, status=request.status,
                 due_at=format_ts(request.due_at), notice=notice)
    return draft


# --- reading ------------------------------------------------------------------------------------------

def get(deps: Deps, tenant_id: str, request_id: str, subject_id: str | None = None) -> RightsRequest:
    """One request; with subject_id, only if it is that subject's (else 404, like an unknown one)."""
    request = deps.store.get_request(tenant_id, request_id)
    if request is None or (subject_id is not None and request.subject_id != subject_id):
        raise NotFound("unknown request")
    return request


def list_requests(deps: Deps, tenant_id: str, *, subject_id: str | None = None, status: str | None = None,
                  request_type: str | None = None, due_before: datetime | None = None,
                  cursor: str | None = None, limit: int | None = None,
                  statuses: tuple[str, ...] = ()) -> Page[RightsRequest]:
    """Requests by deadline (due_at, then id), cursor-paginated; status (one) or statuses (any
    of them) filter, neither for all."""
    if subject_id is not None:
        check_subject_id(subject_id)
    limit = check_limit(limit)
    after = _after(cursor)
    flt = RequestFilter(subject_id=subject_id, statuses=(status,) if status else statuses, type=request_type,
                        due_before=due_before, after=after)
    found = deps.store.list_requests(tenant_id, flt, limit + 1)
    page, more = found[:limit], len(found) > limit
    return Page(page, encode_cursor([format_ts(page[-1].due_at), page[-1].id]) if more else None)


def _after(cursor: str | None) -> tuple[datetime, str] | None:
    value = decode_cursor(cursor)
    if value is None:
        return None
    try:
        due_at, request_id = value
        if not isinstance(request_id, str) or len(request_id) > 64:
            raise ValueError(request_id)
        return parse_ts(due_at), request_id
    except (TypeError, ValueError) as exc:
        raise Invalid.field("cursor", "not a cursor returned by this API") from exc


# --- the scheduler ------------------------------------------------------------------------------------

def notice_due(request: RightsRequest, now: datetime, calendar: str) -> str | None:
    """The notice a pending request should carry now and does not yet, if any."""
    if request.final or request.subject_id is None or Notice.OVERDUE in request.notices:
        return None
    if now >= request.due_at:
        return Notice.OVERDUE
    if Notice.DUE_SOON not in request.notices and deadlines.days_left(now, request.due_at, calendar) <= DUE_SOON_DAYS:
        return Notice.DUE_SOON
    return None


def tick(deps: Deps, now: datetime | None = None) -> list[tuple[str, str, str]]:
    """Mark what has come due across every tenant; (tenant_id, request_id, notice) per mark made.

    Safe to run in several processes at once: a mark is a compare-and-set on the request first,
    so each notice is written once."""
    now = now or deps.clock()
    marked = []
    for tenant in deps.store.iter_tenants():
        calendar = deadline(deps, tenant.id).calendar
        for request in every_request(deps, tenant.id, RequestFilter(statuses=PENDING, due_before=now + LOOKAHEAD)):
            notice = notice_due(request, now, calendar)
            if notice is not None and _mark(deps, request, notice, now):
                marked.append((tenant.id, request.id, notice))
    return marked


def every_request(deps: Deps, tenant_id: str, flt: RequestFilter) -> Iterator[RightsRequest]:
    """All of the tenant's requests matching flt, by deadline, page by page."""
    after = None
    while page := deps.store.list_requests(tenant_id, replace(flt, after=after), 500):
        yield from page
        after = (page[-1].due_at, page[-1].id)


def _mark(deps: Deps, request: RightsRequest, notice: str, now: datetime) -> bool:
    marked = request.changed(notices=(*request.notices, notice))
    if not deps.store.replace_request(marked, request.version):
        return False  # another scheduler (or an answer) came first; the next round looks again
    origin = Origin({"channel": "server", "collection_point": "scheduler"},
                    {"type": ActorType.AGENT, "id": SCHEDULER, "reason": None})
    _append(deps, marked, RequestAction.UPDATED, origin, now, notice)
    return True


# --- erasure ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Closing:
    """What erasing a subject does to its pending requests: closing events before the erase
    event (in the same append), then the stored requests closed and stripped of free text."""

    tenant_id: str
    subject_id: str
    requests: list[RightsRequest]
    closed: list[RightsRequest]
    origin: Origin
    now: datetime

    def drafts(self, current: SubjectRecord) -> list[dict[str, Any]]:
        return [request_draft(r, RequestAction.CLOSED, self.origin, self.now, current) for r in self.closed]

    def finish(self, deps: Deps) -> None:
        for before, after in zip(self.requests, self.closed, strict=True):
            deps.store.replace_request(after, before.version)
        deps.store.forget_request_subject(self.tenant_id, self.subject_id)


def closing_on_erasure(deps: Deps, tenant_id: str, subject_id: str, now: datetime,
                       actor_id: str | None) -> Closing:
    """Erasure answers what is pending: delete and close_account requests are completed by it,
    any other is rejected (there is nothing left to give access to or to correct)."""
    pending = list(every_request(deps, tenant_id, RequestFilter(subject_id=subject_id, statuses=PENDING)))
    closed = [r.changed(status=RequestStatus.COMPLETED if r.type in (RequestType.DELETE, RequestType.CLOSE_ACCOUNT)
                        else RequestStatus.REJECTED,
                        reason=None if r.type in (RequestType.DELETE, RequestType.CLOSE_ACCOUNT) else ERASED_REASON,
                        updated_at=now) for r in pending]
    origin = Origin({"channel": "server"}, {"type": ActorType.AGENT, "id": actor_id, "reason": "erasure request"})
    return Closing(tenant_id, subject_id, pending, closed, origin, now)


