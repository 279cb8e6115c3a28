"""Keys (admin keys only): the tenant's API keys, issued with the secret shown once on the page
that answers the form, and revoked (their console sessions end at once); subject-token keys,
registered (an HS256 secret shown once, or a public key) and revoked. Same services and
schemas as /v1/keys and /v1/subject-token-keys."""

from __future__ import annotations

from typing import Any

from flask import Response, redirect, request, url_for

from consent_api.domain.model import Scope
from consent_api.errors import Invalid
from consent_api.security.tokens import SUBJECT_TOKEN_ALGS
from consent_api.services import console, tenants
from consent_api.web import schemas
from consent_api.web.console import PREFIX, Officer, admin, bp, forms, render
from consent_api.web.context import deps

SCOPES = [str(s) for s in Scope]


def _page(who: Officer, status: int = 200, **context: Any) -> Response:
    return render("console/keys.html", status=status, who=who, keys=console.all_keys(deps(), who.tenant_id),
                  token_keys=tenants.list_subject_token_keys(deps(), who.tenant_id), scopes=SCOPES,
                  algs=SUBJECT_TOKEN_ALGS, done=request.args.get("done"), **context)


@bp.get("/keys")
def keys():
    return _page(admin())


@bp.post("/keys")
def issue_key():
    who = admin()
    try:
        body = {"name": forms.text("name"), "type": forms.text("type") or "secret",
                "scopes": forms.chosen("scopes"), "origins": forms.lines("origins")}
        issued = tenants.issue_key(deps(), who.tenant_id, **schemas.load(schemas.KeyIn, body))
    except Invalid as exc:
        return _page(who, 422, errors=forms.field_errors(exc), values=forms.values())
    return shown_once(who, "api_key", issued.key.name, issued.key.id, issued.secret)


@bp.post("/keys/<key_id>/revoke")
def revoke_key(key_id: str):
    who = admin()
    console.revoke_key(deps(), who.tenant_id, key_id)
    return redirect(f"{PREFIX}/keys?done=revoked")


@bp.post("/subject-token-keys")
def register_subject_token_key():
    who = admin()
    try:
        alg = forms.text("alg")
        body = {"alg": alg, "public_key": forms.optional("public_key") if alg != "HS256" else None}
        data = schemas.load(schemas.SubjectTokenKeyIn, body)
        issued = tenants.register_subject_token_key(deps(), who.tenant_id, data["alg"], data["public_key"])
    except Invalid as exc:
        return _page(who, 422, errors=forms.field_errors(exc), values=forms.values())
    if issued.secret is None:
        return redirect(f"{PREFIX}/keys?done=registered")
    return shown_once(who, "subject_token_key", issued.key.alg, issued.key.kid, issued.secret)


def shown_once(who: Officer, what: str, name: str, ident: str, secret: str, back: str | None = None) -> Response:
    """The secret on this answer only: never in a URL, never stored, gone on reload; back: the
    page its "done" link returns to (the keys)."""
    return render("console/secret.html", status=201, who=who, what=what, name=name, ident=ident, secret=secret,
                  back=back or url_for("console.keys"))


@bp.post("/subject-token-keys/<kid>/revoke")
def revoke_subject_token_key(kid: str):
    who = admin()
    tenants.revoke_subject_token_key(deps(), who.tenant_id, kid)
    return redirect(f"{PREFIX}/keys?done=revoked")
