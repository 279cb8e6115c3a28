"""The collaborators every service function receives: a store, a clock, the signing keys,
and the few rule settings. Tests build one with SQLiteStore(":memory:") and a FixedClock.

Store-to-store maintenance (services/rebuild.py, services/migration.py) takes stores instead:
it works below the tenant's API, on one store or between two."""

from __future__ import annotations

from dataclasses import dataclass, field

from consent_api.domain.clock import Clock
from consent_api.security.signing_keys import KeyRing
from consent_api.store.port import Store


@dataclass(frozen=True)
class AuthRules:
    """What authenticating a bearer token needs besides the store (services/access.py)."""

    admin_token: str | None = None  # the operator's; None: no operator token is accepted
    subject_token_max_lifetime_s: int = 24 * 3600
    subject_token_leeway_s: int = 60
    subject_token_audience: str | None = None  # when set, subject tokens must carry this aud


@dataclass(frozen=True)
class WebhookRules:
    """The change feed's and the webhooks' settings (services/changes.py, webhooks.py, delivery.py)."""

    allow_private: bool = False  # receivers on private, loopback or link-local addresses, and http
    max_waiters: int = 4  # GET /v1/changes long polls waiting at once per process; more answer at once
    lease_s: float = 15.0  # the delivery worker's lease: another takes over this long after a crash
    poll_s: float = 0.1  # how often an idle worker looks for new events


@dataclass(frozen=True)
class Deps:
    store: Store
    clock: Clock
    keys: KeyRing
    issuer: str = "consent_api"
    clock_skew_s: int = 300
    consent_token_ttl_s: int = 3600
    # An Idempotency-Key claimed this long ago without an answer is taken to have died with its
    # request; a retry then runs, counting what the dead attempt wrote as written.
    idempotency_claim_timeout_s: int = 60
    auth: AuthRules = field(default_factory=AuthRules)
    # CONSENT_KEY_ENCRYPTION_KEY: seals tenants' HS256 subject-token secrets at rest (security/sealed.py)
    key_encryption_key: str | None = None
    webhooks: WebhookRules = field(default_factory=WebhookRules)
