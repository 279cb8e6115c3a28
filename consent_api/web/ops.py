"""Blueprint: liveness, readiness, metrics, JWKS."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from consent_api.errors import Unauthorized, Unavailable
from consent_api.security.apikeys import same_secret
from consent_api.web import metrics as prometheus
from consent_api.web.auth import bearer_token
from consent_api.web.context import deps, settings

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz():
    """The process answers."""
    return {"status": "ok"}


@bp.get("/readyz")
def readyz():
    """The store answers."""
    try:
        deps().store.ping()
    except Unavailable:
        raise
    except Exception as exc:  # a driver error we did not translate still means "not ready"
        raise Unavailable("the store does not answer") from exc
    return {"status": "ready"}


@bp.get("/metrics")
def metrics():
    """Prometheus metrics of every worker; needs Bearer CONSENT_METRICS_TOKEN when that is set."""
    expected = settings().metrics_token
    if expected:
        given = bearer_token()
        if given is None or not same_secret(given, expected):
            raise Unauthorized("send Authorization: Bearer <CONSENT_METRICS_TOKEN>")
    body, content_type = prometheus.exposition(deps())
    return Response(body, content_type=content_type)


@bp.get("/.well-known/jwks.json")
def jwks():
    """Public keys for receipts, consent tokens and manifests."""
    response = jsonify(deps().keys.jwks())
    response.headers["Cache-Control"] = "public, max-age=300"
    return response
