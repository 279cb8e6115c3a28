"""Per-credential rate limiting with flask-limiter: over the limit is 429 problem+json with Retry-After.

The limit (``CONSENT_RATE_LIMIT``, e.g. ``600/minute``) is one application-wide fixed window per
credential: an API key's id, a subject token's ``kid:sub``, the operator; a request without
valid credentials counts against its client address. Health, readiness, JWKS and the
documentation are exempt.

Counters live in ``CONSENT_RATE_LIMIT_STORAGE``, any ``limits`` storage URI. The default,
``memory://``, counts per worker process (in ``ProcessWindows``: flask-limiter's per-request
machinery over the same windows cost ~300 us of a ~400 us consent check), so with W workers a
credential can reach up to W times the limit; that is the price of keeping the embedded
(SQLite) deployment's hot read path free of a shared write per request (a counter in the
SQLite file would turn every "may I?" read into a write transaction contending with the
ledger's writers). Deployments that need one exact
counter across processes or machines point it at ``mongodb://...`` (the same cluster as the
store works) or ``redis://...``.
"""

from __future__ import annotations

import math
import threading
import time

from flask import Flask, request
from flask_limiter import Limiter
from flask_limiter.errors import RateLimitExceeded
from limits import RateLimitItem, parse_many

from consent_api.config import Settings
from consent_api.errors import ConsentApiError, TooManyRequests
from consent_api.web import docs, ops
from consent_api.web.auth import caller
from consent_api.web.problems import from_error

DISABLED = {"", "off", "none", "0", "false"}
RATE_COUNTED = "consent_api.rate_counted"  # WSGI environ: web/fastreads.py counted this request


def rate_key() -> str:
    """Who a request counts against: its credential, or its address when it has none."""
    try:
        who = caller()
    except ConsentApiError:
        return "addr:" + (request.remote_addr or "unknown")
    return "cred:" + (who.credential_id or who.kind)


class ProcessWindows:
    """Fixed windows counted in this process, as ``limits``' MemoryStorage keeps them: a key's
    window opens at its first hit and lasts the limit's period; the first limit exceeded wins."""

    SWEEP_EVERY = 10_000  # hits between removals of ended windows

    def __init__(self, items: list[RateLimitItem]):
        self._items = [(item, float(item.get_expiry())) for item in items]
        self._lock = threading.Lock()
        self._windows: dict[tuple[int, str], list[float]] = {}  # (limit, key) -> [count, ends]
        self._hits = 0

    def hit(self, key: str) -> tuple[RateLimitItem, float] | None:
        """Count one request of key: None when allowed, else the limit and seconds left."""
        now = time.monotonic()
        with self._lock:
            self._hits += 1
            if self._hits % self.SWEEP_EVERY == 0:
                self._windows = {k: w for k, w in self._windows.items() if w[1] > now}
            for index, (item, seconds) in enumerate(self._items):
                window = self._windows.get((index, key))
                if window is None or window[1] <= now:
                    window = self._windows[(index, key)] = [0, now + seconds]
                window[0] += 1
                if window[0] > item.amount:
                    return item, window[1] - now
        return None


def _too_many(limit: RateLimitItem | str, retry_after_s: float) -> TooManyRequests:
    return TooManyRequests(f"rate limit exceeded: {limit}",
                           headers={"Retry-After": str(max(1, math.ceil(retry_after_s)))})


def init_app(app: Flask, settings: Settings) -> Limiter | ProcessWindows | None:
    if settings.rate_limit.strip().lower() in DISABLED:
        return None
    try:
        items = parse_many(settings.rate_limit)
    except ValueError as exc:
        raise ValueError(f"CONSENT_RATE_LIMIT {settings.rate_limit!r} is not a rate such as 600/minute") from exc
    if settings.rate_limit_storage.strip() == "memory://":
        return _init_process_windows(app, ProcessWindows(items))
    limiter = Limiter(
        key_func=rate_key, app=app, application_limits=[settings.rate_limit],
        storage_uri=settings.rate_limit_storage, strategy="fixed-window", headers_enabled=False,
        key_prefix="consent_api",
    )
    limiter.exempt(ops.bp)
    limiter.exempt(docs.bp)

    def too_many(exc: RateLimitExceeded):
        current = limiter.current_limit
        return from_error(_too_many(exc.description, current.window.reset_time - time.time() if current else 1))

    app.register_error_handler(RateLimitExceeded, too_many)
    app.extensions["consent_api.limiter"] = limiter
    return limiter


def _init_process_windows(app: Flask, windows: ProcessWindows) -> ProcessWindows:
    exempt = {ops.bp.name, docs.bp.name}

    @app.before_request
    def _rate_limit():
        if request.blueprint in exempt:
            return None
        counted = request.environ.get(RATE_COUNTED, False)
        over = windows.hit(rate_key()) if counted is False else counted
        if over:
            raise _too_many(*over)

    app.extensions["consent_api.limiter"] = windows
    return windows
