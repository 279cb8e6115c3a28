"""Bearer token to Principal, once per request."""

from __future__ import annotations

from dataclasses import dataclass

from flask import g, request

from consent_api.services import access
from consent_api.services.access import Principal
from consent_api.web.context import deps

HANDOVER = "consent_api.handover"  # WSGI environ: a Handover from web/fastreads.py


@dataclass
class Handover:
    """What the fast read path learnt of a request before handing it to Flask: the caller (None
    when authenticating raised ``error``), or what answering raised. Flask goes on from there
    instead of authenticating and reading again."""

    principal: Principal | None = None
    error: Exception | None = None


def parse_bearer(header: str) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value, or None."""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def bearer_token() -> str | None:
    return parse_bearer(request.headers.get("Authorization", ""))


def caller() -> Principal:
    principal = g.get("principal")
    if principal is None:
        handover: Handover | None = request.environ.get(HANDOVER)
        if handover is None:
            principal = access.authenticate(deps(), bearer_token())
        elif handover.principal is None:
            assert handover.error is not None
            raise handover.error
        else:
            principal = handover.principal
        g.principal = principal
    return principal


def handed_over_error() -> None:
    """Raise what the fast read path met answering this request, if it met anything."""
    handover: Handover | None = request.environ.get(HANDOVER)
    if handover is not None and handover.principal is not None and handover.error is not None:
        raise handover.error
