"""The overview: opt-in rate per purpose per day, decisions by channel, withdrawals, subjects
allowed, the re-consent backlog; each chart drawn from the table beside it (static/console.js),
each table also a CSV download. The numbers are GET /v1/stats's. Beside them, the rights
requests waiting for an answer, due soon and overdue, each linking to the queue."""

from __future__ import annotations

from flask import Response, abort

from consent_api.services import console, console_requests
from consent_api.web.console import bp, officer, render
from consent_api.web.context import deps
from consent_api.web.params import query_int


@bp.get("/")
def overview():
    who = officer()
    who.rights.require(who.rights.read)
    found = console.overview(deps(), who.tenant_id, query_int("days"))
    purposes = {p.key: p for p in deps().store.list_purposes(who.tenant_id)}
    return render("console/overview.html", who=who, overview=found, spans=console.SPANS, purposes=purposes,
                  requests=console_requests.counts(deps(), who.tenant_id))


@bp.get("/overview/<chart>.csv")
def overview_csv(chart: str):
    who = officer()
    who.rights.require(who.rights.read)
    found = console.overview(deps(), who.tenant_id, query_int("days"))
    if chart not in found.charts:
        abort(404)
    name = f"{chart}_{found.since}_{found.until}.csv"
    return Response(found.charts[chart].csv(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
