"""Bearer token to Principal, once per request."""

from __future__ import annotations

from flask import g, request

from consent_api.services import access
from consent_api.services.access import Principal
from consent_api.web.context import deps, settings


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def caller() -> Principal:
    principal = g.get("principal")
    if principal is None:
        d = deps()
        principal = g.principal = access.authenticate(d.store, settings(), d.clock, bearer_token())
    return principal
