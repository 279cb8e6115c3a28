"""The privacy center (/privacy/, DESIGN.md §9.3 and §9.7): the API operation that makes a one-time
link, and the pages a person reaches through it. Every page shows the session's own subject and
no other: no URL here names a subject."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from flask import Blueprint, Response, redirect, request, url_for

from consent_api.domain import deadlines
from consent_api.domain.clock import format_ts
from consent_api.domain.model import PageKind, Scope
from consent_api.domain.requests import PENDING, RequestType
from consent_api.errors import Invalid
from consent_api.services import privacy_center, requests
from consent_api.services.privacy_center import NeedsSeparate, Overview, text_in
from consent_api.services.requests import Origin
from consent_api.services.sessions import SessionRules
from consent_api.web import pages, schemas
from consent_api.web.auth import caller
from consent_api.web.context import deps, request_evidence, settings
from consent_api.web.pages import history

# Lax, not Strict: the app opens the link from another site (or a WebView), and the redirect to
# /privacy/ after the exchange must carry the new cookie.
PRIVACY = pages.PageSet("privacy", "/privacy", PageKind.PRIVACY, same_site="Lax",
                        rules=SessionRules(idle=timedelta(minutes=30), lifetime=timedelta(hours=2)),
                        catalogs=("privacy", "history"))
bp = PRIVACY.blueprint(__name__)
api_bp = Blueprint("privacy_links", __name__, url_prefix="/v1")
MAX_DETAILS = 4000


def init_app(app) -> None:
    app.register_blueprint(api_bp)
    PRIVACY.register(app, bp)


# --- the API: a one-time link ---------------------------------------------------------------------

@api_bp.post("/subjects/<subject_id>/privacy-center-links")
def make_link(subject_id: str):
    """A one-time link (valid 10 minutes) that opens this subject's privacy center."""
    tenant_id = caller().require_scope(Scope.WRITE)
    code, expires_at = privacy_center.make_link(deps(), tenant_id, subject_id)
    path = url_for("privacy.open_link", code=code)
    base = settings().public_url
    url = base.rstrip("/") + path if base else request.host_url.rstrip("/") + path
    return {"url": url, "expires_at": format_ts(expires_at)}, 201


# --- pages ----------------------------------------------------------------------------------------

@bp.get("/open/<code>")
def open_link(code: str):
    """Exchange the one-time code for a session, and leave the code's URL at once."""
    try:
        link = privacy_center.exchange(deps(), code)
    except Exception:
        pages.sign_out()  # whoever this browser was, a failed link opens nobody
        raise
    pages.sign_in(tenant_id=link.tenant_id, subject_id=link.subject_id)
    return redirect(url_for("privacy.home"), 303)


def _who() -> tuple[str, str]:
    session = pages.identity()
    assert session.tenant_id is not None and session.subject_id is not None
    return session.tenant_id, session.subject_id


def _purpose_view(current: Overview) -> list[dict[str, Any]]:
    locale = pages.locale()
    return [{"key": c.purpose.key, "title": text_in(c.purpose.title, locale) or c.purpose.key,
             "description": text_in(c.purpose.description, locale), "sensitive": c.purpose.needs_separate,
             "essential": c.purpose.essential, "decidable": c.decidable, "allowed": c.state.allowed,
             "status": "essential" if c.purpose.essential else str(c.state.status),
             "updated_at": c.state.updated_at} for c in current.choices]


def _home(status: int = 200, **extra: Any) -> Response:
    tenant_id, subject_id = _who()
    d = deps()
    current = privacy_center.overview(d, tenant_id, subject_id)
    record = privacy_center.personal_record(d, tenant_id, subject_id)
    purposes = {c.purpose.key: c.purpose for c in current.choices}
    return pages.render(
        "privacy/home.html", status, tenant=current.tenant, purposes=_purpose_view(current),
        under_14=current.under_14, has_policy=current.policy is not None,
        history=history.lines(record.events, purposes, pages.locale()),
        pending=[r for r in record.requests if r.status in PENDING], due_day=history.due_day, **extra)


@bp.get("/")
def home():
    """The person's choices, withdraw-all, their requests, their record and their history."""
    return _home()


@bp.post("/consents")
def save():
    """Record the switches that changed; a sensitive one switched on is confirmed on its own step."""
    tenant_id, subject_id = _who()
    form = request.form
    confirmed = set(form.getlist("confirmed"))
    if form.get("confirm"):
        confirmed.add(form["confirm"])
    desired = set(form.getlist("allow"))
    if form.get("decline"):
        desired.discard(form["decline"])
    try:
        outcome = privacy_center.save(deps(), tenant_id, subject_id, desired, confirmed, pages.locale(),
                                      request_evidence())
    except Invalid as exc:
        return _home(422, error=_refusal(exc))
    if isinstance(outcome, NeedsSeparate):
        purpose = outcome.purpose
        locale = pages.locale()
        tenant = privacy_center.overview(deps(), tenant_id, subject_id).tenant
        return pages.render("privacy/confirm.html", tenant=tenant,
                            purpose={"key": purpose.key, "title": text_in(purpose.title, locale) or purpose.key,
                                     "description": text_in(purpose.description, locale)},
                            desired=sorted(outcome.desired), confirmed=sorted(outcome.confirmed))
    recorded = outcome.recorded
    return _home(saved=recorded is not None, unchanged=recorded is None,
                 receipt=recorded.receipt if recorded else None)


def _refusal(exc: Invalid) -> str:
    """The person's words for a rule that refused their change."""
    fields = " ".join(exc.errors or {})
    if "actor" in fields:
        return pages.t("privacy.error.guardian")
    if "policy" in exc.detail:
        return pages.t("privacy.error.no_policy")
    return pages.t("privacy.error.refused")


@bp.post("/withdraw-all")
def withdraw_all():
    """Withdraw every consent that can be withdrawn, in one step."""
    tenant_id, subject_id = _who()
    outcome = privacy_center.withdraw_all(deps(), tenant_id, subject_id, pages.locale(), request_evidence())
    recorded = outcome.recorded
    return _home(withdrawn=recorded is not None, unchanged=recorded is None,
                 receipt=recorded.receipt if recorded else None)


@bp.get("/requests")
def requests_page():
    """The person's rights requests and the form to make one, with the answer deadline."""
    tenant_id, subject_id = _who()
    d = deps()
    sent_id = request.args.get("sent")
    found = privacy_center.all_requests(d, tenant_id, subject_id)
    deadline = requests.deadline(d, tenant_id)
    due_now = deadlines.due(d.clock(), deadline)
    return pages.render(
        "privacy/requests.html", tenant=privacy_center.overview(d, tenant_id, subject_id).tenant,
        requests=sorted(found, key=lambda r: (r.created_at, r.id), reverse=True),
        sent=next((r for r in found if r.id == sent_id), None),
        types=list(RequestType), deadline=deadline, due_now=due_now, due_day=history.due_day,
        error=request.args.get("error"))


@bp.post("/requests")
def make_request():
    """Open a rights request for the session's subject."""
    tenant_id, subject_id = _who()
    kind = request.form.get("type", "")
    details = (request.form.get("details") or "").strip() or None
    if kind not in tuple(RequestType) or (details is not None and len(details) > MAX_DETAILS):
        return redirect(url_for("privacy.requests_page", error="invalid"), 303)
    origin = Origin({**privacy_center.SOURCE}, {"type": "self", "id": None, "reason": None},
                    locale=pages.locale(), evidence=request_evidence())
    opened = requests.open_request(deps(), tenant_id, subject_id, kind, details, origin, "web")
    return redirect(url_for("privacy.requests_page", sent=opened.id), 303)


@bp.get("/record")
def record_page():
    """Everything held about the person, as a page to read or print."""
    tenant_id, subject_id = _who()
    record = privacy_center.personal_record(deps(), tenant_id, subject_id)
    purposes = {c.purpose.key: c.purpose for c in record.overview.choices}
    return pages.render("privacy/record.html", tenant=record.overview.tenant, subject_id=subject_id,
                        purposes=_purpose_view(record.overview), generated_at=record.generated_at,
                        history=history.lines(record.events, purposes, pages.locale()),
                        requests=record.requests, due_day=history.due_day)


@bp.get("/record.json")
def record_json():
    """Everything held about the person, as JSON to keep."""
    tenant_id, subject_id = _who()
    record = privacy_center.personal_record(deps(), tenant_id, subject_id)
    body = {
        "subject_id": subject_id,
        "tenant": {"id": record.overview.tenant.id, "name": record.overview.tenant.name},
        "generated_at": format_ts(record.generated_at),
        "consents": schemas.state_out(record.overview.state),
        "events": record.events,
        "requests": [schemas.request_out(r) for r in record.requests],
    }
    response = Response(json.dumps(body, ensure_ascii=False, indent=2), mimetype="application/json")
    response.headers["Content-Disposition"] = 'attachment; filename="my-consent-record.json"'
    return response


@bp.post("/sign-out")
def sign_out():
    """End the session here and now."""
    pages.sign_out()
    return pages.render("privacy/signed_out.html")
