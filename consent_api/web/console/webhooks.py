"""Webhooks (admin keys only, as /v1/webhooks): the tenant's endpoints with how far behind each
is and its last attempt; register one (its secret shown once), enable or disable it, rotate its
secret (shown once), send a test, delete it after a confirmation; per endpoint its delivery log,
newest first, with a retry of each failed delivery and a replay from a time. Same services and
schemas as the API (services/webhooks.py, web/schemas/webhooks.py)."""

from __future__ import annotations

from typing import Any

from flask import Response, redirect, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from consent_api.domain.clock import parse_ts
from consent_api.domain.webhooks import TYPES
from consent_api.errors import Invalid
from consent_api.services import console_webhooks
from consent_api.services import webhooks as hooks
from consent_api.web import schemas
from consent_api.web.console import Officer, admin, bp, forms, render
from consent_api.web.console.keys import shown_once
from consent_api.web.context import deps
from consent_api.web.schemas.webhooks import WebhookIn, WebhookPatchIn

LOG_PAGE = 25  # delivery-log rows a page
STATUSES = ("", *hooks.STATUSES)


def _list(who: Officer, status: int = 200, **context: Any) -> Response:
    return render("console/webhooks.html", status=status, who=who,
                  endpoints=console_webhooks.endpoints(deps(), who.tenant_id), types=TYPES,
                  purpose_keys=[p.key for p in deps().store.list_purposes(who.tenant_id)],
                  done=request.args.get("done"), **context)


def _detail(who: Officer, webhook_id: str, status: int = 200, *, shown: str | None = None,
            cursor: str | None = None, **context: Any) -> Response:
    """An endpoint and a page of its log (shown: a status to show only; cursor: where the page starts)."""
    found = console_webhooks.endpoint(deps(), who.tenant_id, webhook_id)
    log = hooks.deliveries(deps(), who.tenant_id, webhook_id, shown or None, cursor, LOG_PAGE)
    return render("console/webhook.html", status=status, who=who, endpoint=found, log=log, shown=shown or "",
                  statuses=STATUSES, done=request.args.get("done"), **context)


@bp.get("/webhooks")
def webhooks():
    return _list(admin())


@bp.post("/webhooks")
def create_webhook():
    who = admin()
    try:
        body = {"url": forms.text("url"), "types": forms.chosen("types") or None,
                "purposes": forms.chosen("purposes") or None, "description": forms.optional("description")}
        created = hooks.create(deps(), who.tenant_id, **schemas.load(WebhookIn, body))
    except Invalid as exc:
        return _list(who, 422, errors=forms.field_errors(exc), values=forms.values())
    return _secret(who, "webhook", created)


def _secret(who: Officer, what: str, shown: hooks.Created) -> Response:
    return shown_once(who, what, shown.webhook.url, shown.webhook.id, shown.secret,
                      back=url_for("console.webhook", webhook_id=shown.webhook.id))


@bp.get("/webhooks/<webhook_id>")
def webhook(webhook_id: str):
    who = admin()
    shown, cursor = request.args.get("status"), request.args.get("cursor")
    try:
        return _detail(who, webhook_id, shown=shown, cursor=cursor)
    except Invalid as exc:  # a status or a cursor of the log that is not one of ours: the first page
        return _detail(who, webhook_id, 422, log_error=exc.detail)


@bp.post("/webhooks/<webhook_id>/status")
def set_status(webhook_id: str):
    who = admin()
    try:
        wanted = schemas.load(WebhookPatchIn, {"status": forms.text("status")})
        hooks.update(deps(), who.tenant_id, webhook_id, wanted)
    except Invalid as exc:
        return _detail(who, webhook_id, 422, errors=forms.field_errors(exc))
    return _done(webhook_id, wanted["status"])


@bp.post("/webhooks/<webhook_id>/rotate-secret")
def rotate_secret(webhook_id: str):
    who = admin()
    return _secret(who, "webhook_rotated", hooks.rotate_secret(deps(), who.tenant_id, webhook_id))


@bp.post("/webhooks/<webhook_id>/test")
def send_test(webhook_id: str):
    who = admin()
    hooks.send_test(deps(), who.tenant_id, webhook_id)
    return _done(webhook_id, "tested")


@bp.post("/webhooks/<webhook_id>/delete")
def delete_webhook(webhook_id: str):
    who = admin()
    if not forms.flag("confirm"):
        return _detail(who, webhook_id, 422, delete_error=True)
    hooks.delete(deps(), who.tenant_id, webhook_id)
    return redirect(url_for("console.webhooks", done="deleted"))


@bp.post("/webhooks/<webhook_id>/deliveries/<delivery_id>/retry")
def retry_delivery(webhook_id: str, delivery_id: str):
    who = admin()
    hooks.retry(deps(), who.tenant_id, webhook_id, delivery_id)
    return _done(webhook_id, "retried")


@bp.post("/webhooks/<webhook_id>/replay")
def replay(webhook_id: str):
    who = admin()
    try:
        since = forms.local_time("since")
        console_webhooks.replay_since(deps(), who.tenant_id, webhook_id, parse_ts(since) if since else None)
    except Invalid as exc:
        return _detail(who, webhook_id, 422, errors=forms.field_errors(exc), values=forms.values())
    return _done(webhook_id, "replayed")


def _done(webhook_id: str, what: str) -> BaseResponse:
    return redirect(url_for("console.webhook", webhook_id=webhook_id, done=what))

