"""Subject tokens, receipts, consent tokens, JWKS rotation, erasure that keeps proof."""

import base64
import json

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from consent_api.domain.ledger import verify_chain
from tests.builders import decision
from tests.support.api import Api
from tests.support.apps import ON_A_SQLITE_FILE

NOW = 1772352000  # 2026-03-01T08:00:00Z, the fixed clock of tests/conftest.py


def now_claims(sub="u1", lifetime=600, **extra):
    iat = NOW
    return {"sub": sub, "iat": iat, "exp": iat + lifetime, **extra}


def pem_public(private) -> str:
    return private.public_key().public_bytes(serialization.Encoding.PEM,
                                             serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@pytest.fixture
def hs256(tenant):
    body = tenant.post("/v1/subject-token-keys", {"alg": "HS256"}).json
    assert body["secret"] and body["alg"] == "HS256"
    return body


def subject_token(kid, secret_or_key, alg="HS256", **claims):
    return jwt.encode(now_claims(**claims), secret_or_key, algorithm=alg, headers={"kid": kid})


def test_hs256_subject_token_reads_and_writes_its_own_subject(tenant, hs256):
    token = subject_token(hs256["kid"], hs256["secret"])
    recorded = tenant.record("u1", decision("push"), token=token)
    assert recorded.status_code == 201
    assert tenant.get("/v1/subjects/u1/consents", token=token).status_code == 200
    assert tenant.get("/v1/subjects/u1/history", token=token).status_code == 200
    assert tenant.get("/v1/subjects/u1/token", token=token).status_code == 200
    withdraw = tenant.post("/v1/subjects/u1/consents/withdraw-all", {"source": {"channel": "ios"}}, token=token)
    assert withdraw.status_code == 200


@pytest.mark.parametrize("alg, make_private, as_jwk", [
    ("ES256", lambda: ec.generate_private_key(ec.SECP256R1()), False),
    ("EdDSA", ed25519.Ed25519PrivateKey.generate, True),
    ("RS256", lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048), False),
])
def test_public_key_subject_tokens(tenant, alg, make_private, as_jwk):
    private = make_private()
    public_key = pem_public(private)
    if as_jwk:
        public_key = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(private.public_key()))
    registered = tenant.post("/v1/subject-token-keys", {"alg": alg, "public_key": public_key})
    assert registered.status_code == 201 and "secret" not in registered.json
    token = subject_token(registered.json["kid"], private, alg=alg)
    assert tenant.record("u1", decision("push"), token=token).status_code == 201


def test_public_key_must_fit_the_algorithm(tenant):
    private = ec.generate_private_key(ec.SECP256R1())
    wrong = tenant.post("/v1/subject-token-keys", {"alg": "RS256", "public_key": pem_public(private)})
    assert wrong.status_code == 422 and "public_key" in wrong.json["errors"]
    missing = tenant.post("/v1/subject-token-keys", {"alg": "ES256"})
    assert missing.status_code == 422
    garbage = tenant.post("/v1/subject-token-keys", {"alg": "ES256", "public_key": "not a key"})
    assert garbage.status_code == 422


def problem_status(response):
    assert response.content_type == "application/problem+json"
    return response.status_code


def test_token_signed_with_the_wrong_key_is_401(tenant, hs256):
    forged = subject_token(hs256["kid"], "sts_" + "x" * 43)
    assert problem_status(tenant.get("/v1/subjects/u1/consents", token=forged)) == 401


def test_expired_token_is_401(tenant, hs256):
    iat = NOW - 7200
    expired = jwt.encode({"sub": "u1", "iat": iat, "exp": iat + 600}, hs256["secret"],
                         algorithm="HS256", headers={"kid": hs256["kid"]})
    assert problem_status(tenant.get("/v1/subjects/u1/consents", token=expired)) == 401


def test_alg_none_is_401(tenant, hs256):
    def b64(data):
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    unsigned = b64({"alg": "none", "kid": hs256["kid"], "typ": "JWT"}) + "." + b64(now_claims()) + "."
    assert problem_status(tenant.get("/v1/subjects/u1/consents", token=unsigned)) == 401


def test_hs256_forged_with_the_registered_public_key_is_401(tenant):
    import hashlib
    import hmac

    private = ec.generate_private_key(ec.SECP256R1())
    public_pem = pem_public(private)
    kid = tenant.post("/v1/subject-token-keys", {"alg": "ES256", "public_key": public_pem}).json["kid"]

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = (b64(json.dumps({"alg": "HS256", "kid": kid, "typ": "JWT"}).encode()) + "."
                     + b64(json.dumps(now_claims()).encode()))
    signature = hmac.new(public_pem.encode(), signing_input.encode(), hashlib.sha256).digest()
    forged = signing_input + "." + b64(signature)
    assert problem_status(tenant.get("/v1/subjects/u1/consents", token=forged)) == 401


def test_token_for_subject_a_on_subject_b_is_403(tenant, hs256):
    tenant.grant("b", "push")
    token_a = subject_token(hs256["kid"], hs256["secret"], sub="a")
    assert problem_status(tenant.get("/v1/subjects/b/consents", token=token_a)) == 403
    assert problem_status(tenant.record("b", decision("push", False), token=token_a)) == 403
    assert tenant.state("b")["purposes"]["push"]["status"] == "granted"


def test_subject_token_reaches_nothing_else(tenant, hs256):
    token = subject_token(hs256["kid"], hs256["secret"])
    for response in (tenant.get("/v1/purposes", token=token), tenant.get("/v1/keys", token=token),
                     tenant.post("/v1/checks", {"purpose": "push", "subject_ids": ["u1"]}, token=token),
                     tenant.delete("/v1/subjects/u1", token=token)):
        assert problem_status(response) == 403


def test_overlong_and_unknown_kid_tokens_are_401(tenant, hs256):
    too_long = subject_token(hs256["kid"], hs256["secret"], lifetime=25 * 3600)
    assert problem_status(tenant.get("/v1/subjects/u1/consents", token=too_long)) == 401
    unknown = subject_token("stk_unknown", hs256["secret"])
    assert problem_status(tenant.get("/v1/subjects/u1/consents", token=unknown)) == 401


def test_revoked_subject_token_key_stops_working(tenant, hs256):
    token = subject_token(hs256["kid"], hs256["secret"])
    assert tenant.delete(f"/v1/subject-token-keys/{hs256['kid']}").status_code == 200
    assert problem_status(tenant.get("/v1/subjects/u1/consents", token=token)) == 401


def test_receipts_and_consent_tokens_verify_with_the_jwks_across_rotation(app, client, tenant):
    from consent_api.security.tokens import verify_service_token

    receipt_before = tenant.grant("u1", "push")["receipt"]
    token_before = tenant.get("/v1/subjects/u1/token").json
    app.extensions["consent_api.deps"].keys.rotate()
    receipt_after = tenant.grant("u2", "push")["receipt"]
    jwks = client.get("/.well-known/jwks.json").json
    assert len(jwks["keys"]) == 2
    assert jwt.get_unverified_header(receipt_before)["kid"] != jwt.get_unverified_header(receipt_after)["kid"]
    for receipt, sub in ((receipt_before, "u1"), (receipt_after, "u2")):
        key = next(k for k in jwks["keys"] if k["kid"] == jwt.get_unverified_header(receipt)["kid"])
        claims = jwt.decode(receipt, jwt.PyJWK(key).key, algorithms=[key["alg"]])
        assert claims["sub"] == sub and claims["decisions"][0]["purpose"] == "push"
    claims = verify_service_token(token_before["token"], jwks, verify_exp=False)
    assert claims["allowed"] == ["push"] and claims["sub"] == "u1"
    assert claims["exp"] - claims["iat"] == 3600


def test_signing_keys_are_encrypted_at_rest_when_asked(new_app):
    app = new_app(key_encryption_key="kek")
    stored = app.extensions["consent_api.deps"].store.list_signing_keys()
    assert stored and all("ENCRYPTED PRIVATE KEY" in k["private_pem"] for k in stored)


@ON_A_SQLITE_FILE
def test_erasure_keeps_proof_and_forgets_the_id(app, tenant):
    store = app.extensions["consent_api.deps"].store
    tenant.grant("alice@example.com", "push", headers={"Idempotency-Key": "k1"})
    tenant.refuse("alice@example.com", "push")
    ref = store.get_subject(tenant.id, "alice@example.com").subject_ref
    assert tenant.delete("/v1/subjects/alice@example.com").status_code == 204
    assert tenant.get("/v1/subjects/alice@example.com/consents").status_code == 404
    events = store.subject_events(tenant.id, ref)
    assert [e["action"] for e in events] == ["grant", "withdraw", "erase"]
    assert events[-1]["purpose"] is None
    assert verify_chain(events) == (3, None)
    exported = list(store.export_events(tenant.id, __import__("consent_api.store.port", fromlist=["x"]).ExportFilter()))
    assert {e["subject_id"] for e in exported} == {None}
    store.close()
    raw = b"".join(p.read_bytes() for p in __import__("pathlib").Path(store.path).parent.glob("consent.db*"))
    assert b"alice@example.com" not in raw
    again = tenant.grant("alice@example.com", "push")
    assert again["events"][0]["seq"] == 1 and again["events"][0]["subject_ref"] != ref
    assert tenant.delete("/v1/subjects/nobody").status_code == 404


def test_audience_is_checked_when_configured(new_app):
    app = new_app(subject_token_audience="https://consent.example.com")
    tenant = Api(app.test_client()).new_tenant("Aud")
    stk = tenant.post("/v1/subject-token-keys", {"alg": "HS256"}).json
    right = subject_token(stk["kid"], stk["secret"], aud="https://consent.example.com")
    wrong = subject_token(stk["kid"], stk["secret"], aud="https://elsewhere.example.com")
    missing = subject_token(stk["kid"], stk["secret"])
    assert tenant.record("u1", decision("push"), token=right).status_code == 201
    assert problem_status(tenant.get("/v1/subjects/u1/consents", token=wrong)) == 401
    assert problem_status(tenant.get("/v1/subjects/u1/consents", token=missing)) == 401
