"""Settings, built once from CONSENT_* environment variables (12-factor)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from consent_api.domain.clock import Clock
    from consent_api.services.deps import Deps
    from consent_api.store.port import Store


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///./consent.db"
    admin_token: str | None = None
    issuer: str = "consent_api"
    metrics_token: str | None = None
    key_encryption_key: str | None = None
    max_body_bytes: int = 1_048_576
    # Under `consent-api serve`, a request body must arrive whole within this many seconds (408).
    body_timeout_s: int = 10
    clock_skew_seconds: int = 300
    subject_token_max_lifetime_s: int = 24 * 3600
    subject_token_leeway_s: int = 60
    # When set, subject tokens must carry this `aud` (e.g. the API's URL).
    subject_token_audience: str | None = None
    consent_token_ttl_s: int = 3600
    idempotency_claim_timeout_s: int = 60
    log_level: str = "INFO"
    # Per credential, as a `limits` string ("600/minute", "50/second;10000/day"); "off" disables.
    # The default is far above what one key sends in tests and benchmarks.
    rate_limit: str = "20000/second"
    # A `limits` storage URI: memory:// counts per worker process; redis:// or mongodb:// share
    # the counters between processes and machines.
    rate_limit_storage: str = "memory://"
    # Page session cookies (privacy center, console) carry Secure when the request came over
    # https ("auto"), or always ("always": behind a proxy that terminates TLS).
    page_cookie_secure: str = "auto"
    # The service's public base URL (https://consent.example.com) for the links it hands out;
    # unset: the host of the request that asked for the link.
    public_url: str | None = None
    # Seconds between the scheduler's rounds over rights requests (due_soon and overdue marks)
    # in the background worker; 0 turns them off (run `consent-api tick-requests` from cron instead).
    request_tick_seconds: int = 60
    # MongoDB client tuning (store.open.MongoOptions; the defaults are the same there)
    mongo_max_pool_size: int = 100
    mongo_min_pool_size: int = 0
    mongo_server_selection_timeout_ms: int = 5000
    mongo_connect_timeout_ms: int = 5000
    mongo_socket_timeout_ms: int = 30000
    mongo_wait_queue_timeout_ms: int = 5000
    mongo_export_read_preference: str = "secondaryPreferred"
    # Webhooks (DESIGN.md §9.1): 1 lets them reach private, loopback and link-local addresses
    # over http too (tests, on-premises receivers).
    webhook_allow_private: int = 0
    # The background worker (`consent-api worker`: webhook deliveries and the rights-request
    # tick). on: `consent-api serve` runs it as a child process; off: serve runs neither, and a
    # separate `consent-api worker` (or cron with tick-requests) does. Unset, CONSENT_WEBHOOK_WORKER
    # (its first name, still honoured) decides.
    worker: str | None = None
    webhook_worker: str = "on"
    # How much lower the CPU priority of serve's worker child is (os.nice): on a saturated
    # machine the API keeps the CPU and deliveries, asynchronous by design, catch up after.
    worker_nice: int = 10
    webhook_lease_s: int = 15
    webhook_poll_ms: int = 100
    changes_max_waiters: int = 4  # GET /v1/changes?wait= long polls per process at once

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get("CONSENT_" + f.name.upper())
            if raw is None or raw == "":
                continue
            values[f.name] = int(raw) if f.type in ("int", int) else raw
        return replace(cls(**values), **overrides)

    @property
    def serve_runs_worker(self) -> bool:
        """Does `consent-api serve` start the background worker as its child?"""
        name, chosen = ("CONSENT_WORKER", self.worker) if self.worker is not None \
            else ("CONSENT_WEBHOOK_WORKER", self.webhook_worker)
        if chosen.strip().lower() not in ("on", "off"):
            raise ValueError(f"{name} is on or off, not {chosen!r}")
        return chosen.strip().lower() == "on"

    def mongo_options(self) -> dict[str, Any]:
        """The CONSENT_MONGO_* settings as store.open.MongoOptions keyword arguments."""
        return {f.name.removeprefix("mongo_"): getattr(self, f.name) for f in fields(self)
                if f.name.startswith("mongo_")}

    def redacted(self) -> dict[str, Any]:
        """Settings for logs: secrets replaced by whether they are set."""
        secret = {"admin_token", "metrics_token", "key_encryption_key"}
        return {f.name: (bool(getattr(self, f.name)) if f.name in secret else getattr(self, f.name))
                for f in fields(self)}


def deps_for(settings: Settings, store: Store, clock: Clock) -> Deps:
    """The services' collaborators under these settings: the app's (web/app.py) and the CLI's."""
    from consent_api.security.signing_keys import KeyRing
    from consent_api.services.deps import AuthRules, Deps, WebhookRules

    return Deps(
        store=store, clock=clock, keys=KeyRing(store, clock, settings.key_encryption_key),
        issuer=settings.issuer, clock_skew_s=settings.clock_skew_seconds,
        consent_token_ttl_s=settings.consent_token_ttl_s,
        idempotency_claim_timeout_s=settings.idempotency_claim_timeout_s,
        key_encryption_key=settings.key_encryption_key,
        auth=AuthRules(admin_token=settings.admin_token,
                       subject_token_max_lifetime_s=settings.subject_token_max_lifetime_s,
                       subject_token_leeway_s=settings.subject_token_leeway_s,
                       subject_token_audience=settings.subject_token_audience),
        webhooks=WebhookRules(allow_private=settings.webhook_allow_private == 1,
                              max_waiters=settings.changes_max_waiters, lease_s=settings.webhook_lease_s,
                              poll_s=settings.webhook_poll_ms / 1000),
    )
