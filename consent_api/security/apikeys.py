"""Opaque API keys: 256 random bits, shown once, stored only as their SHA-256.

A fast hash is right here: the keys are random, not passwords, so there is nothing to
brute-force; the hash only keeps a stolen database from yielding usable keys.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

SECRET_PREFIX = "sk_"
PUBLISHABLE_PREFIX = "pk_"


def generate(publishable: bool = False) -> str:
    return (PUBLISHABLE_PREFIX if publishable else SECRET_PREFIX) + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def display_prefix(key: str) -> str:
    """The first characters, enough to recognise a key in a list, too few to use it."""
    return key[:10]


def same_secret(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"
