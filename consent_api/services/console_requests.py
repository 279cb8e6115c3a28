"""The console's rights-request pages without Flask: the queue by deadline with what is due
soon or overdue, one request with its ledger events, the overview's counts, and answers made
through services/requests.py (the service behind PATCH /v1/requests/{id}), so each writes its
ledger event like the API's."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from consent_api.domain import deadlines
from consent_api.domain.model import ActorType
from consent_api.domain.requests import DUE_SOON_DAYS, PENDING, Notice, RightsRequest
from consent_api.errors import Invalid
from consent_api.services import requests
from consent_api.services.console import history
from consent_api.services.deps import Deps
from consent_api.services.pages import Page
from consent_api.store.port import RequestFilter

CONSOLE_POINT = "console"  # the collection_point of the events of answers made in the console
# The queue's status filter: the pending ones unless asked otherwise
PENDING_FILTER = "pending"
ALL_FILTER = "all"


@dataclass(frozen=True)
class Row:
    request: RightsRequest
    urgency: str | None  # Notice.OVERDUE, Notice.DUE_SOON or None


@dataclass(frozen=True)
class Counts:
    open: int  # open or in progress
    due_soon: int
    overdue: int


def urgency(request: RightsRequest, now: datetime, calendar: str) -> str | None:
    """overdue (due_at passed), due_soon (DUE_SOON_DAYS counted days or fewer left) or None,
    for a request still to be answered."""
    if request.final:
        return None
    if now >= request.due_at:
        return Notice.OVERDUE
    if deadlines.days_left(now, request.due_at, calendar) <= DUE_SOON_DAYS:
        return Notice.DUE_SOON
    return None


def queue(deps: Deps, tenant_id: str, status: str | None, request_type: str | None, cursor: str | None,
          limit: int | None = None) -> Page[Row]:
    """A page of the tenant's requests by due_at; status PENDING_FILTER (or none) for open and in
    progress, ALL_FILTER for every one, else one status."""
    wanted = status or PENDING_FILTER
    one = None if wanted in (PENDING_FILTER, ALL_FILTER) else wanted
    if one is not None and one not in (*PENDING, "completed", "rejected"):
        raise Invalid.field("status", "one of pending, all, open, in_progress, completed, rejected")
    page = requests.list_requests(deps, tenant_id, status=one, request_type=request_type, cursor=cursor,
                                  limit=limit, statuses=PENDING if wanted == PENDING_FILTER else ())
    now, calendar = deps.clock(), requests.deadline(deps, tenant_id).calendar
    return Page([Row(r, urgency(r, now, calendar)) for r in page.items], page.next_cursor)


def counts(deps: Deps, tenant_id: str) -> Counts:
    """How many requests are waiting for an answer, and of them due soon and overdue."""
    now, calendar = deps.clock(), requests.deadline(deps, tenant_id).calendar
    marks = Counter(urgency(r, now, calendar)
                    for r in requests.every_request(deps, tenant_id, RequestFilter(statuses=PENDING)))
    return Counts(sum(marks.values()), marks[Notice.DUE_SOON], marks[Notice.OVERDUE])


@dataclass(frozen=True)
class RequestView:
    row: Row
    events: list[dict[str, Any]]  # the request's ledger events, oldest first (none once erased)


def request_view(deps: Deps, tenant_id: str, request_id: str) -> RequestView:
    """One request (NotFound for another tenant's or an unknown id) and its events."""
    found = requests.get(deps, tenant_id, request_id)
    events = []
    if found.subject_id is not None:
        events = [e for e in history(deps, tenant_id, found.subject_id) if e.get("request_id") == request_id]
    now, calendar = deps.clock(), requests.deadline(deps, tenant_id).calendar
    return RequestView(Row(found, urgency(found, now, calendar)), events)


def answer(deps: Deps, tenant_id: str, request_id: str, status: str, note: str | None, reason: str | None,
           key_id: str) -> RightsRequest:
    """Move a request on as the signed-in key, recorded as made in the console."""
    origin = requests.Origin({"channel": "server", "collection_point": CONSOLE_POINT},
                             {"type": ActorType.AGENT, "id": key_id, "reason": None})
    return requests.answer(deps, tenant_id, request_id, status, note, reason, origin)
