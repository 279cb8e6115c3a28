"""Server-rendered pages for people: the privacy center (/privacy/) and the console
(/console/), in zh-CN and en, working without JavaScript, loading nothing from another origin.

    pageset.py   PageSet: a blueprint with its own session cookie, CSRF on every POST, the
                 locale per request; identity(), sign_in(), sign_out(), render(), t()
    i18n.py      catalogs (locales/<set>.<locale>.json), locale negotiation, dates and times
    assets.py    /pages/static/: the stylesheet and vendored scripts, versioned URLs
    templates/   pages/base.html (the layout every page extends), pages/error.html
    static/      pages.css

init_app(app) installs what every page set shares: the static files, the pages' headers
(a strict Content-Security-Policy, no-store, no referrer) and the error pages, which answer
under a page set's prefix with a page in the visitor's language and everywhere else with the
API's problem+json. A page set registers itself with ``PageSet.register(app, blueprint)``.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from consent_api.errors import ConsentApiError
from consent_api.web import problems
from consent_api.web.pages import assets
from consent_api.web.pages.pageset import (
    CSRF_FIELD,
    CsrfRefused,
    PageSet,
    SignedOut,
    csrf_token,
    current,
    finish,
    identity,
    locale,
    page_set_for,
    page_sets,
    render,
    session,
    sign_in,
    sign_out,
    t,
)

__all__ = ["CSRF_FIELD", "ERROR_STATUSES", "CsrfRefused", "PageSet", "SignedOut", "csrf_token", "current", "identity",
           "init_app", "is_page_endpoint", "locale", "render", "session", "sign_in", "sign_out", "t"]

log = logging.getLogger("consent_api")
ERROR_STATUSES = (400, 401, 403, 404, 405, 410, 413, 422, 429, 500, 503)


def init_app(app: Flask) -> None:
    app.register_blueprint(assets.bp)
    app.after_request(finish)
    for kind in (ConsentApiError, HTTPException, Exception):
        app.register_error_handler(kind, _error)


def is_page_endpoint(app: Flask, endpoint: str) -> bool:
    """Is this a page (or the pages' static files), not an operation of the JSON API?"""
    return endpoint.partition(".")[0] in {assets.bp.name, *page_sets(app)}


def _error(exc: Exception) -> Response:
    """A page under a page set's prefix; the API's problem answer anywhere else."""
    ps = page_set_for(request.path)
    if ps is None:
        return problems.respond(exc)
    if isinstance(exc, SignedOut) and ps.signed_out is not None:
        return ps.signed_out()
    if isinstance(exc, ConsentApiError):
        status = exc.status
    elif isinstance(exc, HTTPException):
        status = exc.code or 500
    else:
        log.exception("unhandled error", extra={"error_type": type(exc).__name__})
        status = 500
    shown = status if status in ERROR_STATUSES else (500 if status >= 500 else 400)
    response = render("pages/error.html", status=status, error=shown)
    if isinstance(exc, ConsentApiError):
        response.headers.update(exc.headers)
    return response
