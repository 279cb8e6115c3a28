"""Audit (audit:read keys): choose filters, then download the export as NDJSON or CSV, its signed
manifest and the service's public keys, all for the same filters, and read how to verify them
offline. The files are those of GET /v1/audit/events and /v1/audit/manifest; ``until`` is fixed
when the page is shown, so the export and its manifest cover the same events even while new
decisions arrive."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from urllib.parse import urlencode

from flask import Response, request

from consent_api.domain.clock import format_ts
from consent_api.services import audit as exports
from consent_api.web.console import PREFIX, Officer, bp, officer, render
from consent_api.web.context import deps
from consent_api.web.pages.i18n import PAGE_ZONE
from consent_api.web.params import only, query_date, query_time

FILTERS = ("since", "until", "purpose", "subject_id")


def _auditor() -> Officer:
    who = officer()
    who.rights.require(who.rights.export)
    return who


def _day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=PAGE_ZONE)


@bp.get("/audit")
def audit():
    who = _auditor()
    only(("since_day", "until_day", "purpose", "subject_id"))
    since_day, until_day = _day("since_day"), _day("until_day")
    filters = {
        "since": format_ts(_day_start(since_day)) if since_day else None,
        # without a day: everything recorded up to this moment (until is exclusive)
        "until": format_ts(_day_start(until_day + timedelta(days=1)) if until_day
                           else deps().clock() + timedelta(microseconds=1)),
        "purpose": request.args.get("purpose") or None,
        "subject_id": (request.args.get("subject_id") or "").strip() or None,
    }
    query = urlencode({k: v for k, v in filters.items() if v})
    links = {
        "ndjson": f"{PREFIX}/audit/export.ndjson?{query}",
        "csv": f"{PREFIX}/audit/export.csv?{query}",
        "manifest": f"{PREFIX}/audit/manifest.jws?{query}",
        "jwks": f"{PREFIX}/audit/jwks.json",
    }
    return render("console/audit.html", who=who, filters=filters, links=links,
                  purposes=deps().store.list_purposes(who.tenant_id),
                  since_day=since_day, until_day=until_day)


def _day(name: str) -> date | None:
    """A date field of the filter form; left empty, no filter."""
    return query_date(name) if request.args.get(name) else None


def _query() -> exports.ExportQuery:
    only(FILTERS)
    return exports.ExportQuery(since=query_time("since"), until=query_time("until"),
                               purpose=request.args.get("purpose"), subject_id=request.args.get("subject_id"))


def _attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"'}


@bp.get("/audit/export.<fmt>")
def download_export(fmt: str):
    who = _auditor()
    out = exports.export(deps(), who.tenant_id, _query(), fmt)
    return Response(out.chunks, content_type=out.content_type, headers=_attachment(f"export.{fmt}"))


@bp.get("/audit/manifest.jws")
def download_manifest():
    who = _auditor()
    token = exports.manifest(deps(), who.tenant_id, _query())
    return Response(token + "\n", mimetype="application/jose", headers=_attachment("export.manifest.jws"))


@bp.get("/audit/jwks.json")
def download_jwks():
    _auditor()
    return Response(json.dumps(deps().keys.jwks(), indent=2) + "\n", mimetype="application/json",
                    headers=_attachment("jwks.json"))
