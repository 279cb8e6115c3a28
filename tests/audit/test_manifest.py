"""GET /v1/audit/manifest: a JWS that verifies with the JWKS alone and states the export exactly."""

from __future__ import annotations

import base64
import hashlib

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from consent_api.security.tokens import public_jwk
from consent_api.verify import Failure, read_manifest, verify_export
from tests.audit.ledger import lines
from tests.support.apps import ON_BOTH_STORES

pytestmark = ON_BOTH_STORES

def decode_with_jwks_only(token: str, jwks: dict) -> dict:
    """What an auditor does with pyjwt and the published JWKS, nothing of ours."""
    kid = jwt.get_unverified_header(token)["kid"]
    jwk = next(k for k in jwks["keys"] if k["kid"] == kid)
    return jwt.decode(token, jwt.PyJWK(jwk).key, algorithms=[jwk["alg"]])


def test_manifest_verifies_with_the_jwks_and_states_count_digests_and_heads(ledger):
    response = ledger.get("/v1/audit/manifest", expect=200).json
    assert set(response) == {"manifest"}
    payload = decode_with_jwks_only(response["manifest"], ledger.jwks())
    ndjson, csv = ledger.export(), ledger.export(format="csv")
    events = lines(ndjson)
    assert payload["count"] == len(events) == 13
    assert payload["sha256"] == hashlib.sha256(ndjson).hexdigest()
    assert payload["sha256_csv"] == hashlib.sha256(csv).hexdigest()
    heads = {}
    for e in events:
        heads[e["subject_ref"]] = e["hash"]
    assert payload["chain_heads"] == heads and len(heads) == 5
    assert payload["filters"] == {"since": None, "until": None, "purpose": None, "subject_id": None,
                                  "subject_ref": None}
    assert payload["issued_at"] == "2026-03-02T10:10:00.000000Z"
    assert payload["tenant_id"] == ledger.id
    assert jwt.get_unverified_header(response["manifest"])["alg"] == "ES256"


def test_filtered_manifest_matches_the_filtered_export(ledger):
    params = {"since": "2026-03-02T08:05:00Z", "until": "2026-03-02T10:00:00Z", "purpose": "location"}
    payload = decode_with_jwks_only(ledger.manifest(**params), ledger.jwks())
    body = ledger.export(**params)
    assert payload["count"] == len(lines(body)) == 3
    assert payload["sha256"] == hashlib.sha256(body).hexdigest()
    assert payload["sha256_csv"] == hashlib.sha256(ledger.export(format="csv", **params)).hexdigest()
    assert payload["filters"] == {"since": "2026-03-02T08:05:00.000000Z", "until": "2026-03-02T10:00:00.000000Z",
                                  "purpose": "location", "subject_id": None, "subject_ref": None}


def test_manifest_of_an_empty_export(ledger):
    payload = decode_with_jwks_only(ledger.manifest(subject_id="nobody"), ledger.jwks())
    assert payload["count"] == 0 and payload["chain_heads"] == {}
    assert payload["sha256"] == hashlib.sha256(b"").hexdigest()
    assert payload["sha256_csv"] == hashlib.sha256(ledger.export(format="csv", subject_id="nobody")).hexdigest()


def test_manifest_takes_the_exports_query_but_refuses_a_cursor(ledger):
    assert ledger.manifest(format="csv")
    assert "cursor" in ledger.get("/v1/audit/manifest", query={"cursor": "WzFd"}, expect=422).json["errors"]
    assert "format" in ledger.get("/v1/audit/manifest", query={"format": "xml"}, expect=422).json["errors"]
    assert "bogus" in ledger.get("/v1/audit/manifest", query={"bogus": "1"}, expect=422).json["errors"]


def test_http_export_and_manifest_verify_offline(ledger, tmp_path):
    for fmt in ("ndjson", "csv"):
        path = tmp_path / f"events.{fmt}"
        path.write_bytes(ledger.export(format=fmt))
        verdict = verify_export(path, ledger.manifest(), ledger.jwks())
        assert verdict.ok, str(verdict)
        assert str(verdict).startswith("OK: 13 events, 5 subjects, manifest signed by kid sk-")


def test_a_manifest_checked_against_another_key_with_the_same_kid_is_refused(ledger):
    kid = ledger.jwks()["keys"][0]["kid"]
    impostor = public_jwk(ec.generate_private_key(ec.SECP256R1()).public_key(), kid, "ES256")
    with pytest.raises(Failure, match="signature does not verify"):
        read_manifest(ledger.manifest(), {"keys": [impostor]})
    with pytest.raises(Failure, match="not in the JWKS"):
        read_manifest(ledger.manifest(), {"keys": []})


def test_a_manifest_with_an_hmac_alg_is_refused_even_if_the_jwks_says_so(ledger):
    kid = ledger.jwks()["keys"][0]["kid"]
    secret = b"s" * 32
    forged = jwt.encode({"count": 0}, secret, algorithm="HS256", headers={"kid": kid})
    k = base64.urlsafe_b64encode(secret).decode().rstrip("=")
    hmac_jwks = {"keys": [{"kty": "oct", "kid": kid, "alg": "HS256", "k": k}]}
    with pytest.raises(Failure, match="public-key algorithm"):
        read_manifest(forged, hmac_jwks)
