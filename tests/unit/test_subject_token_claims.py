"""Subject-token time claims are NumericDates: finite integers in range. NaN, ±Infinity, strings,
booleans, floats and values past year 9999 are refused (Unauthorized), as are payloads that
repeat a claim, whatever the comparisons would make of them."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import jwt
import pytest

from consent_api.domain.model import SubjectTokenKey
from consent_api.errors import Unauthorized
from consent_api.security import tokens

NOW = datetime(2026, 3, 1, 8, 0, tzinfo=timezone.utc)
T = int(NOW.timestamp())
SECRET = "sts_" + "s" * 40
KEY = SubjectTokenKey("stk_1", "ten_1", "HS256", SECRET, NOW)


def signed(raw_payload: str) -> str:
    """A token whose payload is exactly this JSON text (NaN and repeated names included)."""
    return jwt.api_jws.encode(raw_payload.encode(), SECRET, algorithm="HS256", headers={"kid": KEY.kid})


def verify(token: str):
    return tokens.verify_subject_token(token, lambda kid: KEY if kid == KEY.kid else None, NOW,
                                       max_lifetime_s=86400, leeway_s=60)


def claims(**raw_claims: str) -> str:
    """The payload's JSON text; each keyword gives a claim's raw JSON value."""
    body = {"sub": json.dumps("user-1"), "iat": str(T - 10), "exp": str(T + 600), **raw_claims}
    return "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in body.items()) + "}"


def test_a_well_formed_token_is_accepted():
    key, payload = verify(signed(claims()))
    assert key.kid == KEY.kid and payload["sub"] == "user-1"


@pytest.mark.parametrize("claim", ["iat", "exp", "nbf"])
@pytest.mark.parametrize("value", [
    "NaN", "Infinity", "-Infinity",  # raw JSON constants Python's parser accepts
    '"1767225600"', "true", "false", "null", "[1]", "{}",
    "1767225600.5", "1.7e9", "1e400",  # floats, and one that overflows to inf
    str(10**20), str(-(10**20)), "253402300800",  # past year 9999 / far negative
])
def test_time_claims_must_be_finite_integers(claim, value):
    with pytest.raises(Unauthorized):
        verify(signed(claims(**{claim: value})))


def test_nan_expiry_never_passes_as_valid():
    with pytest.raises(Unauthorized):
        verify(signed(claims(exp="NaN", iat="NaN")))


def test_a_payload_that_repeats_a_claim_is_refused():
    # {"exp": <soon>, ..., "exp": <far>}: parsers disagree on which one wins
    raw = claims()[:-1] + f',"exp":{T + 10**8}' + "}"
    with pytest.raises(Unauthorized):
        verify(signed(raw))
    raw = claims()[:-1] + ',"sub":"someone-else"}'
    with pytest.raises(Unauthorized):
        verify(signed(raw))


def test_service_tokens_are_parsed_as_strictly(tmp_path):
    from cryptography.hazmat.primitives.asymmetric import ec

    private = ec.generate_private_key(ec.SECP256R1())
    jwks = {"keys": [tokens.public_jwk(private.public_key(), "k1", "ES256")]}
    good = jwt.api_jws.encode(b'{"sub":"a","iat":1}', private, algorithm="ES256", headers={"kid": "k1"})
    assert tokens.verify_service_token(good, jwks, verify_exp=False)["sub"] == "a"
    for raw in (b'{"sub":"a","iat":NaN}', b'{"sub":"a","sub":"b"}'):
        bad = jwt.api_jws.encode(raw, private, algorithm="ES256", headers={"kid": "k1"})
        with pytest.raises((Unauthorized, jwt.PyJWTError)):
            tokens.verify_service_token(bad, jwks, verify_exp=False)
