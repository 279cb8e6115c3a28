"""Rights requests: the queue by due_at (overdue and due soon marked, estimated deadlines
flagged), filtered by status and type, a page at a time; a request with its details and ledger
events; its answers (in_progress, completed, rejected with a reason) for admin keys, through the
service behind PATCH /v1/requests/{id}, so each writes its ledger event."""

from __future__ import annotations

from typing import Any

from flask import Response, redirect, request, url_for

from consent_api.domain.requests import RequestStatus, RequestType
from consent_api.errors import Conflict, Invalid
from consent_api.services import console_requests
from consent_api.web import schemas
from consent_api.web.console import Officer, admin, bp, forms, officer, render
from consent_api.web.context import deps

QUEUE_PAGE = 25  # requests a page
STATUS_FILTERS = (console_requests.PENDING_FILTER, *RequestStatus, console_requests.ALL_FILTER)
ANSWERS = (RequestStatus.IN_PROGRESS, RequestStatus.COMPLETED, RequestStatus.REJECTED)


def _reader() -> Officer:
    who = officer()
    who.rights.require(who.rights.read)
    return who


@bp.get("/requests")
def requests():
    who = _reader()
    status, kind = request.args.get("status") or None, request.args.get("type") or None
    context: dict[str, Any] = {"status_filters": STATUS_FILTERS, "types": list(RequestType),
                               "wanted": status or console_requests.PENDING_FILTER, "kind": kind or ""}
    try:
        if kind is not None and kind not in tuple(RequestType):
            raise Invalid.field("type", "one of " + ", ".join(RequestType))
        page = console_requests.queue(deps(), who.tenant_id, status, kind, request.args.get("cursor"), QUEUE_PAGE)
    except Invalid as exc:
        return render("console/requests.html", status=422, who=who, page=None, error=exc, **context)
    return render("console/requests.html", who=who, page=page, **context)


def _detail(who: Officer, request_id: str, status: int = 200, **context: Any) -> Response:
    view = console_requests.request_view(deps(), who.tenant_id, request_id)
    return render("console/request.html", status=status, who=who, view=view, answers=ANSWERS,
                  done=request.args.get("done"), **context)


@bp.get("/requests/<request_id>")
def rights_request(request_id: str):
    return _detail(_reader(), request_id)


@bp.post("/requests/<request_id>")
def answer_request(request_id: str):
    who = admin()
    try:
        body = {"status": forms.text("status"), "note": forms.optional("note"), "reason": forms.optional("reason")}
        data = schemas.load(schemas.RequestAnswerIn, body)
        console_requests.answer(deps(), who.tenant_id, request_id, data["status"], data["note"], data["reason"],
                                who.key.id)
    except Invalid as exc:
        return _detail(who, request_id, 422, errors=forms.field_errors(exc), values=forms.values())
    except Conflict as exc:
        return _detail(who, request_id, 409, conflict=exc.detail)
    return redirect(url_for("console.rights_request", request_id=request_id, done="answered"))
