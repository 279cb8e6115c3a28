"""Blueprint: liveness, readiness, JWKS."""

from __future__ import annotations

from flask import Blueprint, jsonify

from consent_api.errors import Unavailable
from consent_api.web.context import deps

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


@bp.get("/.well-known/jwks.json")
def jwks():
    """Public keys for receipts, consent tokens and manifests."""
    response = jsonify(deps().keys.jwks())
    response.headers["Cache-Control"] = "public, max-age=300"
    return response
