"""create_app(settings): the store, the signing keys, the blueprints and the problem handlers."""

from __future__ import annotations

import io
import logging
from typing import Any

from flask import Flask

from consent_api.config import Settings, deps_for
from consent_api.domain.clock import Clock, system_clock
from consent_api.errors import Unavailable
from consent_api.store.open import MongoOptions, open_store
from consent_api.store.port import Store
from consent_api.web import (
    admin,
    audit,
    checks,
    console,
    docs,
    metrics,
    ops,
    pages,
    privacy,
    problems,
    public,
    ratelimit,
    requestlog,
    requests,
    rsgi,
    stats,
    subjects,
    webhooks,
)
from consent_api.web.fastreads import FastReads
from consent_api.web.fastwrites import FastWrites
from consent_api.web.json_provider import OrjsonProvider

log = logging.getLogger("consent_api")

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}


def create_app(settings: Settings | dict[str, Any] | None = None, *, store: Store | None = None,
               clock: Clock | None = None) -> Flask:
    if settings is None:
        settings = Settings.from_env()
    elif isinstance(settings, dict):
        settings = Settings(**settings)
    app = Flask(__name__)
    app.json = OrjsonProvider(app)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    requestlog.install(settings.log_level)

    store = store or open_store(settings.database_url, MongoOptions(**settings.mongo_options()))
    store = metrics.timed(store)
    clock = clock or system_clock
    deps = deps_for(settings, store, clock)
    try:
        deps.keys.jwks()  # create the first signing key at start-up, not on the first request
    except Unavailable as exc:  # the store is down: start anyway, /readyz says 503 until it is up
        log.warning("store unreachable at start-up; answering 503 until it is", extra={"error": exc.detail})
    app.extensions["consent_api.settings"] = settings
    app.extensions["consent_api.deps"] = deps

    for blueprint in (admin.bp, subjects.bp, checks.bp, ops.bp, public.bp, docs.bp, audit.bp, requests.bp,
                      stats.bp, webhooks.bp):
        app.register_blueprint(blueprint)
    problems.init_app(app)
    pages.init_app(app)  # after problems: under a page set's prefix, errors answer as pages
    privacy.init_app(app)
    console.init_app(app)
    limiter = ratelimit.init_app(app, settings)
    requestlog.init_app(app)
    metrics.init_app(app)

    wsgi: Any = app.wsgi_app
    fast_paths = limiter is None or isinstance(limiter, ratelimit.ProcessWindows)  # else flask-limiter counts
    windows = limiter if isinstance(limiter, ratelimit.ProcessWindows) else None
    if fast_paths:
        writes = wsgi = FastWrites(wsgi, app.extensions, app.url_map, windows, app.json, settings.max_body_bytes)
    wsgi = RequestLimits(wsgi, settings.max_body_bytes)
    if fast_paths:
        fast = wsgi = FastReads(wsgi, app.extensions, app.url_map, windows)
        if settings.database_url.startswith("sqlite:"):
            # A fast read on a local file never waits on the network: the RSGI front of `serve`
            # runs it on the event loop instead of handing it to a thread (web/rsgi.py).
            app.extensions[rsgi.INLINE] = fast.is_fast_read
            # A fast write waits only for the group commit, without blocking the loop meanwhile.
            app.extensions[rsgi.ON_LOOP] = writes.is_fast_write
    app.wsgi_app = DefaultHeaders(wsgi, {**SECURITY_HEADERS, "Cache-Control": "no-store"})  # type: ignore[method-assign]
    return app


class RequestLimits:
    """WSGI middleware: a URI longer than rsgi.MAX_URI_BYTES gets 414; a body of unknown length
    (chunked) is read here, up to the size limit, and refused whole beyond it (413, Connection:
    close); the app then sees it with its length. werkzeug enforces MAX_CONTENT_LENGTH only on a
    declared length, and on a stream of unknown length read only up to the limit, so a valid
    JSON prefix followed by anything was processed. Under `consent-api serve` the RSGI front
    (web/rsgi.py) has done both before the app runs; this keeps them under any WSGI server."""

    def __init__(self, wsgi_app, max_bytes: int):
        self.wsgi_app = wsgi_app
        self.max_bytes = max_bytes

    def __call__(self, environ, start_response):
        if len(environ.get("PATH_INFO", "")) + len(environ.get("QUERY_STRING", "")) > rsgi.MAX_URI_BYTES:
            return self._refuse(rsgi.uri_too_long(), start_response)
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()  # wins over a length
        if not chunked and (environ.get("CONTENT_LENGTH") or not environ.get("wsgi.input_terminated")):
            return self.wsgi_app(environ, start_response)
        body = environ["wsgi.input"].read(self.max_bytes + 1)
        if len(body) > self.max_bytes:
            return self._refuse(rsgi.too_large(self.max_bytes), start_response)
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        environ.update({"wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body)),
                        "wsgi.input_terminated": True})
        return self.wsgi_app(environ, start_response)

    @staticmethod
    def _refuse(refused: rsgi.BodyRefused, start_response):
        status, headers, problem = refused.answer()
        start_response(f"{status} {refused.title}", headers)
        return [problem]


class DefaultHeaders:
    """WSGI middleware adding headers a response does not set itself; a plain list scan, because
    werkzeug's Headers.setdefault cost ~7 us a header on the hot path."""

    def __init__(self, wsgi_app, headers: dict[str, str]):
        self.wsgi_app = wsgi_app
        self.headers = [(name.lower(), (name, value)) for name, value in headers.items()]

    def __call__(self, environ, start_response):
        def start(status, headers, exc_info=None):
            present = {name.lower() for name, _ in headers}
            headers.extend(item for lower, item in self.headers if lower not in present)
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, start)
