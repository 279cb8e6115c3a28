"""Blueprint: bulk checks and audiences."""

from __future__ import annotations

from flask import Blueprint

from consent_api.domain.model import Scope
from consent_api.services import checks
from consent_api.web import schemas
from consent_api.web.auth import caller
from consent_api.web.context import deps, json_body
from consent_api.web.params import page_args

bp = Blueprint("checks", __name__, url_prefix="/v1")


@bp.post("/checks")
def bulk_check():
    """Is one purpose allowed for up to 1,000 subjects?"""
    tenant_id = caller().require_scope(Scope.READ)
    data = schemas.load(schemas.ChecksIn, json_body())
    results = checks.check(deps(), tenant_id, data["purpose"], data["subject_ids"])
    return {"purpose": data["purpose"], "results": results}


@bp.get("/audiences/<purpose>")
def audience(purpose: str):
    """Subjects for whom a purpose is allowed now, by id."""
    tenant_id = caller().require_scope(Scope.READ)
    return schemas.page_out(checks.audience(deps(), tenant_id, purpose, *page_args()))
