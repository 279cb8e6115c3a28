"""Blueprint: GET /v1/stats, the per-day counters for dashboards and BI tools."""

from __future__ import annotations

from flask import Blueprint, request

from consent_api.domain.model import Scope
from consent_api.services import stats
from consent_api.web.auth import caller
from consent_api.web.context import deps
from consent_api.web.params import only, query_date

bp = Blueprint("stats", __name__, url_prefix="/v1")


@bp.get("/stats")
def get_stats():
    """Decisions and allowed subjects per day and purpose (Beijing days), from counters."""
    principal = caller()
    tenant_id = principal.require_scope(Scope.AUDIT if principal.has(Scope.AUDIT) else Scope.READ)
    only(("since", "until", "purpose"))
    found = stats.stats(deps(), tenant_id, query_date("since"), query_date("until"), request.args.get("purpose"))
    return {"timezone": found.timezone, "since": found.since, "until": found.until,
            "days": found.days}
