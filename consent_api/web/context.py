"""The only Flask-context look-ups views make: the service dependencies and the request's
caller, body and evidence."""

from __future__ import annotations

from typing import Any

from flask import current_app, g, request

from consent_api.config import Settings
from consent_api.domain.evidence import evidence
from consent_api.errors import BadRequest, Invalid, PayloadTooLarge, UnsupportedMediaType
from consent_api.security import strict_json
from consent_api.services.deps import Deps


def deps() -> Deps:
    return current_app.extensions["consent_api.deps"]


def settings() -> Settings:
    return current_app.extensions["consent_api.settings"]


def json_body() -> Any:
    """The request's JSON document; 400 when it is not strict JSON (security/strict_json.py),
    413 when too large, 415 when it is sent as something other than JSON."""
    limit = settings().max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"request bodies are limited to {limit} bytes")
    raw = request.get_data(cache=True)
    if len(raw) > limit:
        raise PayloadTooLarge(f"request bodies are limited to {limit} bytes")
    if not raw.strip():
        raise BadRequest("send a JSON body with Content-Type: application/json")
    if not _is_json(request.mimetype):
        sent = request.mimetype or "without a Content-Type"
        raise UnsupportedMediaType(f"send the body as application/json, not {sent}")
    try:
        return strict_json.loads(raw)
    except strict_json.NotStrictJson as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from exc


def _is_json(mimetype: str) -> bool:
    return mimetype == "application/json" or (mimetype.startswith("application/") and mimetype.endswith("+json"))


def request_evidence(gpc: bool = False) -> dict[str, Any]:
    """Minimised evidence: an IP prefix, a hash of the User-Agent, the GPC signal."""
    return evidence(request.remote_addr, request.headers.get("User-Agent"),
                    gpc or request.headers.get("Sec-GPC") == "1")


def idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not valid_idempotency_key(key):
        raise Invalid.field("Idempotency-Key", "1 to 255 printable ASCII characters")
    return key


def valid_idempotency_key(key: str) -> bool:
    return 1 <= len(key) <= 255 and all(" " <= c <= "~" for c in key)


def principal():
    return g.principal
