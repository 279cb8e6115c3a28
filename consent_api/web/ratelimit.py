"""Per-credential rate limiting with flask-limiter: over the limit is 429 problem+json with Retry-After.

The limit (``CONSENT_RATE_LIMIT``, e.g. ``600/minute``) is one application-wide fixed window per
credential: an API key's id, a subject token's ``kid:sub``, the operator; a request without
valid credentials counts against its client address. Health, readiness, JWKS and the
documentation are exempt.

Counters live in ``CONSENT_RATE_LIMIT_STORAGE``, any ``limits`` storage URI. The default,
``memory://``, counts per worker process, so with W workers a credential can reach up to W times
the limit; that is the price of keeping the embedded (SQLite) deployment's hot read path free of
a shared write per request (a counter in the SQLite file would turn every "may I?" read into a
write transaction contending with the ledger's writers). Deployments that need one exact
counter across processes or machines point it at ``mongodb://...`` (the same cluster as the
store works) or ``redis://...``.
"""

from __future__ import annotations

import math
import time

from flask import Flask, request
from flask_limiter import Limiter
from flask_limiter.errors import RateLimitExceeded
from limits import parse_many

from consent_api.config import Settings
from consent_api.errors import ConsentApiError
from consent_api.web import docs, ops
from consent_api.web.auth import caller
from consent_api.web.problems import problem

DISABLED = {"", "off", "none", "0", "false"}


def rate_key() -> str:
    """Who a request counts against: its credential, or its address when it has none."""
    try:
        who = caller()
    except ConsentApiError:
        return "addr:" + (request.remote_addr or "unknown")
    return "cred:" + (who.credential_id or who.kind)


def init_app(app: Flask, settings: Settings) -> Limiter | None:
    if settings.rate_limit.strip().lower() in DISABLED:
        return None
    try:
        parse_many(settings.rate_limit)
    except ValueError as exc:
        raise ValueError(f"CONSENT_RATE_LIMIT {settings.rate_limit!r} is not a rate such as 600/minute") from exc
    limiter = Limiter(
        key_func=rate_key, app=app, application_limits=[settings.rate_limit],
        storage_uri=settings.rate_limit_storage, strategy="fixed-window", headers_enabled=False,
        key_prefix="consent_api",
    )
    limiter.exempt(ops.bp)
    limiter.exempt(docs.bp)

    def too_many(exc: RateLimitExceeded):
        current = limiter.current_limit
        retry = max(1, math.ceil(current.window.reset_time - time.time())) if current else 1
        return problem(429, "Too many requests", f"rate limit exceeded: {exc.description}",
                       "rate-limited", headers={"Retry-After": str(retry)})

    app.register_error_handler(RateLimitExceeded, too_many)
    app.extensions["consent_api.limiter"] = limiter
    return limiter
