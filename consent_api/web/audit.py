"""Blueprint: the auditor's export (streamed NDJSON or CSV) and its signed manifest."""

from __future__ import annotations

from flask import Blueprint, Response, request

from consent_api.domain.model import Scope
from consent_api.services import audit
from consent_api.web.auth import caller
from consent_api.web.context import deps
from consent_api.web.params import only, query_time

bp = Blueprint("audit", __name__, url_prefix="/v1/audit")

FILTERS = ("since", "until", "purpose", "subject_id", "subject_ref")


def export_query(allowed: tuple[str, ...]) -> audit.ExportQuery:
    """The filters from the query string; a misspelt or repeated parameter is refused, because
    silently ignoring it would export more than the auditor asked for."""
    only(allowed)
    return audit.ExportQuery(
        since=query_time("since"), until=query_time("until"), purpose=request.args.get("purpose"),
        subject_id=request.args.get("subject_id"), subject_ref=request.args.get("subject_ref"),
        cursor=request.args.get("cursor"),
    )


@bp.get("/events")
def events():
    """Stream the tenant's events, ordered by recorded_at, seq, event_id (NDJSON or CSV)."""
    tenant_id = caller().require_scope(Scope.AUDIT)
    query = export_query(FILTERS + ("format", "cursor"))
    out = audit.export(deps(), tenant_id, query, request.args.get("format"))
    return Response(out.chunks, content_type=out.content_type)


@bp.get("/manifest")
def manifest():
    """A JWS over the same filters: count, sha256 of both formats, chain heads."""
    tenant_id = caller().require_scope(Scope.AUDIT)
    query = export_query(FILTERS + ("format", "cursor"))
    return {"manifest": audit.manifest(deps(), tenant_id, query, request.args.get("format"))}
