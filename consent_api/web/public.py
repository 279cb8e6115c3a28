"""Blueprint: what browsers reach with a publishable key, and the snippet itself.

CORS lives only here. A response carries Access-Control-Allow-Origin only for an Origin
registered on a live publishable key, never ``*``; error answers carry it too, so the
snippet can tell a final 4xx from a network failure. Preflights carry no credentials, so
they are answered (Flask's automatic OPTIONS) for any registered Origin.

Besides /v1/public/*, a subject's consents (read and record) answer browsers too: a page in
an app's WebView calls them with the signed-in user's subject token. There the Origin must be
registered on a publishable key of the token's own tenant; any other credential gets no CORS.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from flask import Blueprint, Response, current_app, g, request

from consent_api.services import public, tenants
from consent_api.services.access import PUBLISHABLE, SUBJECT
from consent_api.web import schemas
from consent_api.web.auth import caller
from consent_api.web.context import deps, json_body, request_evidence
from consent_api.web.idempotency import claim, idempotent
from consent_api.web.subjects import recorded_out

bp = Blueprint("public", __name__)
STATIC = Path(__file__).with_name("static")
SNIPPET = STATIC / "consent.js"
CORS_HEADERS = "Authorization, Content-Type, Idempotency-Key"
# The subject-token routes the snippet calls from a WebView (its token mode).
SUBJECT_CORS_ENDPOINTS = frozenset({"subjects.get_state", "subjects.record_consents"})


def _config_for(tenant_id: str, locale: str | None) -> dict:
    tenant = tenants.get_tenant(deps(), tenant_id)
    return public.banner_config(deps(), tenant_id, tenant.name, locale)


@bp.get("/v1/public/config")
def config():
    """Purposes, current policy, vendors and texts for the banner (cacheable, ETag)."""
    tenant_id = caller().require_publishable(request.headers.get("Origin"))
    body = json.dumps(_config_for(tenant_id, request.args.get("locale")), ensure_ascii=False,
                      separators=(",", ":")).encode("utf-8")
    return _cacheable(body, "application/json", max_age=60)


@bp.post("/v1/public/consents")
@idempotent(201, recorded_out)
def record():
    """Record a browser's decisions for an anonymous, first-party subject id."""
    tenant_id = caller().require_publishable(request.headers.get("Origin"))
    data = schemas.load(schemas.PublicConsentsIn, json_body())
    return public.record_anonymous(
        deps(), tenant_id, data["subject_id"], data["decisions"], data["policy_version"],
        data["locale"], request_evidence(gpc=data["gpc"]), claim())


@bp.get("/sdk/consent.js")
def snippet():
    """The consent banner script; with ?key=pk_… the tenant's config is inlined."""
    bundle = current_app.extensions.setdefault("consent_api.snippet", SNIPPET.read_bytes())
    tenant_id = tenants.publishable_tenant(deps(), request.args.get("key"))
    if tenant_id is None:
        return _cacheable(bundle, "application/javascript; charset=utf-8", max_age=3600)
    configs = {loc: _config_for(tenant_id, loc) for loc in public.SNIPPET_LOCALES}
    prefix = "window.__CONSENT_CONFIG__=" + json.dumps(configs, separators=(",", ":")) + ";\n"
    return _cacheable(prefix.encode("utf-8") + bundle, "application/javascript; charset=utf-8",
                      max_age=300)


@bp.get("/sdk/consent-<any(panel, app):part>.js")
def snippet_part(part: str):
    """A part of the snippet that it loads only when a page needs it (preferences panel, app mode)."""
    parts = current_app.extensions.setdefault("consent_api.snippet_parts", {})
    if part not in parts:
        parts[part] = (STATIC / f"consent-{part}.js").read_bytes()
    return _cacheable(parts[part], "application/javascript; charset=utf-8", max_age=3600)


def _cacheable(body: bytes, mimetype: str, max_age: int) -> Response:
    etag = hashlib.sha256(body).hexdigest()[:32]
    fresh = etag in request.if_none_match
    response = Response(status=304) if fresh else Response(body, mimetype=mimetype)
    response.set_etag(etag)
    response.headers["Cache-Control"] = f"public, max-age={max_age}"
    response.vary.update(("Authorization", "Origin"))
    return response


@bp.after_app_request
def _cors(response: Response) -> Response:
    if request.path.startswith("/v1/public/"):
        allowed = _origin_allowed
    elif request.endpoint in SUBJECT_CORS_ENDPOINTS:
        allowed = _subject_origin_allowed
    else:
        return response
    origin = request.headers.get("Origin")
    response.vary.add("Origin")
    if not origin or not allowed(origin.lower()):
        return response
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Expose-Headers"] = "ETag, Retry-After, Idempotent-Replayed"
    if request.method == "OPTIONS":
        response.headers["Access-Control-Allow-Methods"] = "GET, POST"
        response.headers["Access-Control-Allow-Headers"] = CORS_HEADERS
        response.headers["Access-Control-Max-Age"] = "600"
    return response


def _origin_allowed(origin: str) -> bool:
    principal = g.get("principal")
    if principal is not None and principal.kind == PUBLISHABLE:
        return origin in principal.origins
    return tenants.origin_registered(deps(), origin)


def _subject_origin_allowed(origin: str) -> bool:
    principal = g.get("principal")
    if principal is None:  # a preflight, or a credential refused before it was known
        return tenants.origin_registered(deps(), origin)
    return principal.kind == SUBJECT and tenants.origin_registered(deps(), origin, principal.tenant_id)
