"""Every error leaves as RFC 9457 application/problem+json: {type, title, status, detail, errors?}."""

from __future__ import annotations

import json
import logging

from flask import Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect

from consent_api.errors import ConsentApiError, PayloadTooLarge, Unauthorized

log = logging.getLogger("consent_api")
TYPE_BASE = "https://consent-api.dev/problems/"
PROBLEM_JSON = "application/problem+json"


def problem(status: int, title: str, detail: str, slug: str,
            errors: dict[str, list[str]] | None = None, headers: dict[str, str] | None = None) -> Response:
    body = {"type": TYPE_BASE + slug, "title": title, "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    response = Response(json.dumps(body, ensure_ascii=False), status=status, mimetype=PROBLEM_JSON)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def from_error(exc: ConsentApiError) -> Response:
    headers = dict(exc.headers)
    if isinstance(exc, Unauthorized):
        headers.setdefault("WWW-Authenticate", "Bearer")  # RFC 9110: a 401 names its scheme
    return problem(exc.status, exc.title, exc.detail, exc.type_slug, exc.errors, headers)


def _from_http(exc: HTTPException) -> Response:
    code = exc.code or 500
    if code == PayloadTooLarge.status:
        # werkzeug's own 413 (MAX_CONTENT_LENGTH hit while reading) answers like ours
        limit = current_app.config["MAX_CONTENT_LENGTH"]
        return from_error(PayloadTooLarge(f"request bodies are limited to {limit} bytes"))
    slug = (exc.name or "error").lower().replace(" ", "-")
    response = problem(code, exc.name or "Error", exc.description or exc.name or "", slug)
    if code == 405 and exc.response is None:
        allowed = getattr(exc, "valid_methods", None)
        if allowed:
            response.headers["Allow"] = ", ".join(allowed)
    return response


def _unexpected(exc: Exception) -> Response:
    log.exception("unhandled error", extra={"error_type": type(exc).__name__})
    return problem(500, "Internal error", "The server failed to answer; the error has been logged.",
                   "internal")


def respond(exc: Exception) -> Response:
    """The problem answer any exception gets (the page sets answer with pages on their own paths
    and hand everything else back here)."""
    if isinstance(exc, ConsentApiError):
        return from_error(exc)
    if isinstance(exc, HTTPException):
        return _from_http(exc)
    return _unexpected(exc)


def _redirect_as_problem(response: Response) -> Response:
    """werkzeug answers a path with doubled slashes (/v1//purposes) with a 308 to the merged
    path, outside every error handler and with an HTML body; the same redirect, as a problem."""
    if isinstance(request.routing_exception, RequestRedirect):
        location = response.headers.get("Location", "")
        body = {"type": TYPE_BASE + "moved", "title": "Permanent redirect", "status": response.status_code,
                "detail": f"this resource is at {location}"}
        response.set_data(json.dumps(body, ensure_ascii=False))
        response.mimetype = PROBLEM_JSON
    return response


def init_app(app: Flask) -> None:
    app.after_request(_redirect_as_problem)
    app.register_error_handler(ConsentApiError, from_error)
    app.register_error_handler(HTTPException, _from_http)
    app.register_error_handler(Exception, _unexpected)
