"""Secrets kept in the store, sealed with CONSENT_KEY_ENCRYPTION_KEY: the HS256 secrets tenants
sign subject tokens with (the service's own signing keys are encrypted PEM, signing_keys.py).

A sealed secret is ``enc1:<salt>:<nonce>:<ciphertext>`` (base64url): AES-256-GCM under a key
derived from the passphrase and a random salt with scrypt, the key's id as associated data (a
sealed secret copied to another key's row does not open). A value without the prefix is a
secret stored before sealing was configured, and is used as it is. Derived keys are kept per
process, so scrypt runs once per secret and process, not once per request.
"""

from __future__ import annotations

import base64
import os
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from consent_api.errors import Unavailable

PREFIX = "enc1:"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@lru_cache(maxsize=4096)
def _key(passphrase: str, salt: bytes) -> bytes:
    return Scrypt(salt=salt, length=32, n=2**14, r=8, p=1).derive(passphrase.encode("utf-8"))


def is_sealed(material: str) -> bool:
    return material.startswith(PREFIX)


def seal(secret: str, passphrase: str, context: str) -> str:
    """The secret sealed for the store; context (the key's id) must be given again to open it."""
    salt, nonce = os.urandom(16), os.urandom(12)
    sealed = AESGCM(_key(passphrase, salt)).encrypt(nonce, secret.encode("utf-8"), context.encode("utf-8"))
    return PREFIX + ":".join(_b64(part) for part in (salt, nonce, sealed))


def unseal(material: str, passphrase: str | None, context: str) -> str:
    """The secret a stored value holds: a plain one as it is, a sealed one opened; Unavailable
    when it is sealed and the passphrase is missing or another."""
    if not is_sealed(material):
        return material
    if not passphrase:
        raise Unavailable("a stored secret is encrypted and CONSENT_KEY_ENCRYPTION_KEY is not set")
    try:
        salt, nonce, sealed = (_unb64(part) for part in material[len(PREFIX):].split(":"))
        return AESGCM(_key(passphrase, salt)).decrypt(nonce, sealed, context.encode("utf-8")).decode("utf-8")
    except (InvalidTag, ValueError) as exc:
        raise Unavailable("a stored secret does not open with CONSENT_KEY_ENCRYPTION_KEY "
                          "(another passphrase, or the value was altered)") from exc
