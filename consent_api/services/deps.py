"""The collaborators every service function receives: a store, a clock, the signing keys,
and the few rule settings. Tests build one with SQLiteStore(":memory:") and a FixedClock."""

from __future__ import annotations

from dataclasses import dataclass

from consent_api.domain.clock import Clock
from consent_api.security.signing_keys import KeyRing
from consent_api.store.port import Store


@dataclass(frozen=True)
class Deps:
    store: Store
    clock: Clock
    keys: KeyRing
    issuer: str = "consent_api"
    clock_skew_s: int = 300
    consent_token_ttl_s: int = 3600
