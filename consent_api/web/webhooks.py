"""Blueprint: the change feed (/v1/changes), webhook endpoints and their delivery log, and the
auditor's NDJSON of every delivery (/v1/audit/deliveries)."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
from flask import Blueprint, Response, request

from consent_api.domain.model import Scope
from consent_api.errors import Invalid
from consent_api.services import changes, webhooks
from consent_api.web import schemas
from consent_api.web.auth import caller
from consent_api.web.context import deps, json_body
from consent_api.web.params import page_args, query_time
from consent_api.web.schemas.webhooks import ReplayIn, WebhookIn, WebhookPatchIn, attempt_out, webhook_out

bp = Blueprint("webhooks", __name__, url_prefix="/v1")


def _float_arg(name: str) -> float | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError as exc:
        raise Invalid.field(name, "must be a number of seconds") from exc


@bp.get("/changes")
def list_changes():
    """The tenant's ledger events in commit order after a cursor; ?wait= long-polls for more."""
    tenant_id = caller().require_scope(Scope.READ)
    _, limit = page_args()
    page = changes.changes(deps(), tenant_id, request.args.get("after"), limit, _float_arg("wait"))
    return schemas.page_out(page)


@bp.post("/webhooks")
def create_webhook():
    """Register a webhook endpoint; its signing secret is shown only in this answer."""
    tenant_id = caller().require_scope(Scope.ADMIN)
    data = schemas.load(WebhookIn, json_body())
    created = webhooks.create(deps(), tenant_id, **data)
    return webhook_out(created.webhook, created.secret), 201


@bp.get("/webhooks")
def list_webhooks():
    """The tenant's webhook endpoints, without secrets."""
    tenant_id = caller().require_scope(Scope.ADMIN)
    return schemas.page_out(webhooks.list_webhooks(deps(), tenant_id, *page_args()), webhook_out)


@bp.get("/webhooks/<webhook_id>")
def get_webhook(webhook_id: str):
    """One webhook endpoint, without its secret."""
    tenant_id = caller().require_scope(Scope.ADMIN)
    return webhook_out(webhooks.get(deps(), tenant_id, webhook_id))


@bp.patch("/webhooks/<webhook_id>")
def update_webhook(webhook_id: str):
    """Change url, types, purposes, description or status (enabled | disabled)."""
    tenant_id = caller().require_scope(Scope.ADMIN)
    data = schemas.load(WebhookPatchIn, json_body())
    return webhook_out(webhooks.update(deps(), tenant_id, webhook_id, data))


@bp.delete("/webhooks/<webhook_id>")
def delete_webhook(webhook_id: str):
    """Remove an endpoint and what it is still owed; its delivery log stays."""
    tenant_id = caller().require_scope(Scope.ADMIN)
    webhooks.delete(deps(), tenant_id, webhook_id)
    return "", 204


@bp.post("/webhooks/<webhook_id>/rotate-secret")
def rotate_secret(webhook_id: str):
    """A new signing secret, shown only here; the old one signs too for 24 hours."""
    tenant_id = caller().require_scope(Scope.ADMIN)
    rotated = webhooks.rotate_secret(deps(), tenant_id, webhook_id)
    return webhook_out(rotated.webhook, rotated.secret)


@bp.post("/webhooks/<webhook_id>/test")
def test_webhook(webhook_id: str):
    """Send a webhook.test message; answers its pending delivery-log row."""
    tenant_id = caller().require_scope(Scope.ADMIN)
    return attempt_out(webhooks.send_test(deps(), tenant_id, webhook_id)), 202


@bp.get("/webhooks/<webhook_id>/deliveries")
def list_deliveries(webhook_id: str):
    """The endpoint's delivery log, newest first: one row per attempt, made or scheduled."""
    tenant_id = caller().require_scope(Scope.ADMIN)
    cursor, limit = page_args()
    page = webhooks.deliveries(deps(), tenant_id, webhook_id, request.args.get("status"), cursor, limit)
    return schemas.page_out(page, attempt_out)


@bp.post("/webhooks/<webhook_id>/deliveries/<delivery_id>/retry")
def retry_delivery(webhook_id: str, delivery_id: str):
    """Send that row's message again now, with its webhook-id; answers the pending row."""
    tenant_id = caller().require_scope(Scope.ADMIN)
    return attempt_out(webhooks.retry(deps(), tenant_id, webhook_id, delivery_id)), 202


@bp.post("/webhooks/<webhook_id>/replay")
def replay(webhook_id: str):
    """Send again every event after a change-feed cursor (none: from the first event)."""
    tenant_id = caller().require_scope(Scope.ADMIN)
    data = schemas.load(ReplayIn, json_body())
    start, until = webhooks.replay(deps(), tenant_id, webhook_id, data["after"])
    return {"webhook_id": webhook_id, "after": start, "until": until}, 202


@bp.get("/audit/deliveries")
def export_deliveries():
    """Every delivery-log row of the tenant as NDJSON, oldest first (since, until on created time)."""
    tenant_id = caller().require_scope(Scope.AUDIT)
    unknown = {name: ["unknown query parameter"] for name in request.args
               if name not in ("since", "until", "webhook_id")}
    if unknown:
        raise Invalid("unsupported query parameters: " + ", ".join(sorted(unknown)), errors=unknown)
    rows = webhooks.export_deliveries(deps(), tenant_id, query_time("since"), query_time("until"),
                                      request.args.get("webhook_id"))

    def lines() -> Iterator[bytes]:
        for row in rows:
            yield orjson.dumps(attempt_out(row)) + b"\n"

    return Response(lines(), content_type="application/x-ndjson")
