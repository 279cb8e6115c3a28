"""Every JWT the service signs or accepts (verify.py, the offline verifier, is the other module that imports jwt).

Algorithms are always pinned: the service's own tokens use the algorithm of the signing
key named by ``kid``; a subject token is verified only with the algorithm registered for
its ``kid``, so ``alg: none`` and an HS256 token forged with a public key both fail.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import jwt
from jwt.algorithms import get_default_algorithms

from consent_api.domain.model import SubjectTokenKey
from consent_api.errors import Invalid, Unauthorized
from consent_api.security import sealed, strict_json

SUBJECT_TOKEN_ALGS = ("HS256", "RS256", "ES256", "EdDSA")
_ALGORITHMS = get_default_algorithms()
TIME_CLAIMS = ("iat", "exp", "nbf")
MIN_RSA_BITS = 2048  # NIST SP 800-131A: shorter RSA keys are not acceptable for signatures
MAX_NUMERIC_DATE = 253402300799  # 9999-12-31T23:59:59Z


class _StrictJWT(jwt.PyJWT):
    """pyjwt with its payload parsed by strict_json (its documented override point): no NaN,
    no Infinity, no claim twice."""

    def _decode_payload(self, decoded: dict[str, Any]) -> dict[str, Any]:
        try:
            payload = strict_json.loads(decoded["payload"])
        except strict_json.NotStrictJson as exc:
            raise jwt.DecodeError(f"Invalid payload string: {exc}") from exc
        if not isinstance(payload, dict):
            raise jwt.DecodeError("Invalid payload string: must be a json object")
        return payload


_JWT = _StrictJWT()


def numeric_date(value: Any) -> bool:
    """An RFC 7519 NumericDate as this service takes it: an integer (never a bool or a float)
    from 0 to the end of year 9999."""
    return type(value) is int and 0 <= value <= MAX_NUMERIC_DATE


def sign(claims: dict[str, Any], private_key: Any, kid: str, alg: str, typ: str = "JWT") -> str:
    return jwt.encode(claims, private_key, algorithm=alg, headers={"kid": kid, "typ": typ})


def unverified_kid(token: str) -> str | None:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        return None
    kid = header.get("kid")
    return kid if isinstance(kid, str) else None


def load_public_key(alg: str, material: str | dict) -> Any:
    """A verification key from a PEM string or a JWK object; Invalid when it does not fit alg."""
    try:
        if isinstance(material, dict):
            jwk = jwt.PyJWK(material, algorithm=alg)
            return jwk.key
        return _ALGORITHMS[alg].prepare_key(material)
    except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
        raise Invalid.field("public_key", f"not a usable {alg} public key: {exc}") from exc


def normalise_public_key(alg: str, material: str | dict) -> str:
    """Check a tenant's public key and return it as PEM (how it is stored)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    key = load_public_key(alg, material)
    expected: type[Any] = {"RS256": rsa.RSAPublicKey, "ES256": ec.EllipticCurvePublicKey,
                "EdDSA": ed25519.Ed25519PublicKey}[alg]
    if not isinstance(key, expected):
        raise Invalid.field("public_key", f"a private or non-{alg} key was given; send the public key")
    if alg == "ES256" and key.curve.name != "secp256r1":
        raise Invalid.field("public_key", "ES256 needs a P-256 key")
    if alg == "RS256" and key.key_size < MIN_RSA_BITS:
        raise Invalid.field("public_key", f"RS256 needs an RSA key of at least {MIN_RSA_BITS} bits "
                                          f"(this one has {key.key_size})")
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def verify_subject_token(
    token: str,
    find_key: Callable[[str], SubjectTokenKey | None],
    now: datetime,
    *,
    max_lifetime_s: int,
    leeway_s: int,
    audience: str | None = None,
    passphrase: str | None = None,
) -> tuple[SubjectTokenKey, dict[str, Any]]:
    """Verify a tenant-signed subject token; Unauthorized on any failure. An HS256 secret
    stored sealed (security/sealed.py) is opened with passphrase."""
    kid = unverified_kid(token)
    key = find_key(kid) if kid else None
    if key is None or key.revoked_at is not None:
        raise Unauthorized("unknown or revoked subject-token key (kid)")
    verifier: Any
    if key.alg == "HS256":
        verifier = sealed.unseal(key.material, passphrase, key.kid).encode("utf-8")
    else:
        verifier = load_public_key(key.alg, key.material)
        if key.alg == "RS256" and verifier.key_size < MIN_RSA_BITS:  # registered before the rule
            raise Unauthorized(f"the subject-token key {key.kid} is an RSA key under {MIN_RSA_BITS} bits")
    try:
        # Time claims are checked below against the service clock, not the host's.
        claims = _JWT.decode(
            token, verifier, algorithms=[key.alg],
            options={"require": ["sub", "iat", "exp"], "verify_aud": audience is not None,
                     "verify_exp": False, "verify_iat": False, "verify_nbf": False},
            audience=audience,
        )
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"invalid subject token: {exc}") from exc
    iat, exp, nbf = claims.get("iat"), claims.get("exp"), claims.get("nbf")
    dates = all(numeric_date(claims[name]) for name in TIME_CLAIMS if name in claims)
    if not isinstance(claims.get("sub"), str) or not dates:
        raise Unauthorized("invalid subject token: sub must be a string; iat, exp and nbf integers "
                           "(seconds since 1970, up to year 9999)")
    assert iat is not None and exp is not None  # required, and integers as checked above
    t = now.timestamp()
    if exp <= t - leeway_s:
        raise Unauthorized("subject token expired")
    if iat > t + leeway_s or (nbf is not None and nbf > t + leeway_s):
        raise Unauthorized("subject token is not valid yet (iat or nbf in the future)")
    if exp - iat > max_lifetime_s:
        raise Unauthorized(f"subject token lives longer than {max_lifetime_s} s")
    return key, claims


def verify_service_token(token: str, jwks: dict[str, Any], *, audience: str | None = None,
                         verify_exp: bool = True) -> dict[str, Any]:
    """Verify a receipt, consent token or manifest with nothing but a JWKS document."""
    kid = unverified_kid(token)
    for jwk in jwks.get("keys", []):
        if jwk.get("kid") == kid:
            key = jwt.PyJWK(jwk)
            return _JWT.decode(token, key.key, algorithms=[jwk["alg"]],
                               options={"verify_exp": verify_exp, "verify_aud": False})
    raise Unauthorized("no key in the JWKS matches the token's kid")


def public_jwk(public_key: Any, kid: str, alg: str) -> dict[str, Any]:
    jwk = json.loads(_ALGORITHMS[alg].to_jwk(public_key))
    jwk.update(kid=kid, alg=alg, use="sig")
    return jwk
