"""Blueprint: rights requests (a subject's own, the tenant's queue, answers) and tenant settings."""

from __future__ import annotations

from flask import Blueprint

from consent_api.domain.model import ActorType, Scope
from consent_api.domain.requests import RequestStatus, RequestType
from consent_api.services import access
from consent_api.services import requests as rights
from consent_api.services.requests import Origin
from consent_api.web import schemas
from consent_api.web.auth import caller
from consent_api.web.context import deps, json_body, request_evidence
from consent_api.web.idempotency import idempotent
from consent_api.web.params import page_args, query_choice, query_time

bp = Blueprint("requests", __name__, url_prefix="/v1")


def _origin(channel: str | None) -> Origin:
    who = caller()
    actor_type = ActorType.SELF if who.kind == access.SUBJECT else ActorType.AGENT
    actor_id = None if who.kind == access.SUBJECT else who.credential_id
    return Origin({"channel": channel or "server"}, {"type": actor_type, "id": actor_id, "reason": None},
                  evidence=request_evidence())


@bp.post("/subjects/<subject_id>/requests")
@idempotent(201, schemas.request_out)
def open_request(subject_id: str):
    """Open a rights request (access, copy, correct, delete, withdraw, close_account, explain)."""
    tenant_id = caller().require_subject(Scope.WRITE, subject_id)
    data = schemas.load(schemas.RightsRequestIn, json_body())
    return rights.open_request(deps(), tenant_id, subject_id, data["type"], data["details"],
                               _origin(data["channel"]), data["channel"])


@bp.get("/subjects/<subject_id>/requests")
def subject_requests(subject_id: str):
    """The subject's rights requests, by deadline."""
    tenant_id = caller().require_subject(Scope.READ, subject_id)
    cursor, limit = page_args()
    page = rights.list_requests(deps(), tenant_id, subject_id=subject_id, cursor=cursor, limit=limit)
    return schemas.page_out(page, schemas.request_out)


@bp.get("/requests")
def list_requests():
    """The tenant's rights requests by deadline, filtered by status, type and due_before."""
    tenant_id = caller().require_scope(Scope.READ)
    cursor, limit = page_args()
    page = rights.list_requests(deps(), tenant_id, status=query_choice("status", RequestStatus),
                                request_type=query_choice("type", RequestType), due_before=query_time("due_before"),
                                cursor=cursor, limit=limit)
    return schemas.page_out(page, schemas.request_out)


@bp.get("/requests/<request_id>")
def get_request(request_id: str):
    """One rights request (a subject token reads only its own subject's)."""
    who = caller()
    if who.kind == access.SUBJECT:
        assert who.tenant_id is not None
        request = rights.get(deps(), who.tenant_id, request_id, subject_id=who.subject_id)
    else:
        request = rights.get(deps(), who.require_scope(Scope.READ), request_id)
    return schemas.request_out(request)


@bp.patch("/requests/<request_id>")
def answer_request(request_id: str):
    """Move a request to in_progress, or close it (completed, rejected with a reason); final is final."""
    tenant_id = caller().require_scope(Scope.ADMIN)
    data = schemas.load(schemas.RequestAnswerIn, json_body())
    request = rights.answer(deps(), tenant_id, request_id, data["status"], data["note"], data["reason"],
                            _origin("server"))
    return schemas.request_out(request)


@bp.get("/settings")
def get_settings():
    """The tenant's settings: the answer period of rights requests."""
    tenant_id = caller().require_scope(Scope.READ)
    return rights.get_settings(deps(), tenant_id)


@bp.put("/settings")
def put_settings():
    """Set the answer period of rights requests opened from now on."""
    tenant_id = caller().require_scope(Scope.ADMIN)
    data = schemas.load(schemas.SettingsIn, json_body())
    return rights.put_settings(deps(), tenant_id, data["request_deadline"])
