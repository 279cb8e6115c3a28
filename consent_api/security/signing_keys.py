"""The service's own ES256 signing keys: generated on first start, persisted in the store,
rotated without invalidating what they signed (retired keys stay in the JWKS).

Private keys are stored in the store, so every worker and every instance signs with the same
key; with CONSENT_KEY_ENCRYPTION_KEY set they are encrypted at rest (PEM with
BestAvailableEncryption), otherwise they rely on the store's own protection (the SQLite file
is created 0600).
"""

from __future__ import annotations

import secrets
import threading
import time
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from consent_api.domain.clock import Clock, format_ts
from consent_api.errors import Conflict
from consent_api.security import tokens
from consent_api.store.port import Store

ALG = "ES256"
RELOAD_AFTER_S = 60.0  # other workers may rotate; pick their keys up within a minute


class KeyRing:
    def __init__(self, store: Store, clock: Clock, passphrase: str | None = None):
        self._store = store
        self._clock = clock
        self._passphrase = passphrase.encode("utf-8") if passphrase else None
        self._lock = threading.Lock()
        self._active: tuple[str, Any] | None = None
        self._jwks: dict[str, Any] | None = None
        self._loaded_at = 0.0

    def _load(self) -> None:
        docs = self._store.list_signing_keys()
        if not any(d.get("active") for d in docs):
            self.rotate()
            docs = self._store.list_signing_keys()
        active = [d for d in docs if d.get("active")][-1]
        pem = active["private_pem"].encode("ascii")
        # A key made before CONSENT_KEY_ENCRYPTION_KEY was set stays readable (unencrypted PEM);
        # the next rotation writes an encrypted one.
        encrypted = pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
        private = serialization.load_pem_private_key(pem, password=self._passphrase if encrypted else None)
        self._active = (active["kid"], private)
        self._jwks = {"keys": [d["public_jwk"] for d in docs if not d.get("withdrawn_at")]}
        self._loaded_at = time.monotonic()

    def _ensure(self) -> tuple[str, Any]:
        if self._active is None or time.monotonic() - self._loaded_at > RELOAD_AFTER_S:
            with self._lock:
                if self._active is None or time.monotonic() - self._loaded_at > RELOAD_AFTER_S:
                    self._load()
        assert self._active is not None
        return self._active

    def rotate(self) -> str:
        """Make a new active key; the old ones keep verifying what they signed."""
        private = ec.generate_private_key(ec.SECP256R1())
        kid = "sk-" + format_ts(self._clock())[:10] + "-" + secrets.token_hex(4)
        encryption = (serialization.BestAvailableEncryption(self._passphrase)
                      if self._passphrase else serialization.NoEncryption())
        doc = {
            "kid": kid, "alg": ALG, "created_at": format_ts(self._clock()), "active": True,
            "private_pem": private.private_bytes(serialization.Encoding.PEM,
                                                 serialization.PrivateFormat.PKCS8,
                                                 encryption).decode("ascii"),
            "public_jwk": tokens.public_jwk(private.public_key(), kid, ALG),
        }
        previous = [d for d in self._store.list_signing_keys() if d.get("active")]
        try:
            self._store.add_signing_key(doc)
        except Conflict:  # pragma: no cover - 32 random bits collided
            return self.rotate()
        for old in previous:
            self._store.update_signing_key(old["kid"], {"active": False})
        self._active = None
        self._jwks = None
        return kid

    def sign(self, claims: dict[str, Any], typ: str = "JWT") -> str:
        kid, private = self._ensure()
        return tokens.sign(claims, private, kid, ALG, typ)

    def jwks(self) -> dict[str, Any]:
        self._ensure()
        assert self._jwks is not None
        return self._jwks

    def now(self) -> datetime:
        return self._clock()
