"""HS256 subject-token secrets at rest: sealed with CONSENT_KEY_ENCRYPTION_KEY when it is set,
like the service's own signing keys; secrets stored before it was set keep working; a sealed
secret without the passphrase (or with another) is a 503 that names the setting, never a 500
and never an accepted token."""

from __future__ import annotations

import sqlite3

import jwt
import pytest

from consent_api.config import Settings
from consent_api.domain.clock import FixedClock
from consent_api.security import sealed
from consent_api.web.app import create_app
from tests.conftest import OPERATOR_TOKEN, TenantActions, bearer

PASSPHRASE = "a passphrase only the operator knows"


def stored_material(db: str, kid: str) -> str:
    with sqlite3.connect(db) as conn:
        (doc,) = conn.execute("SELECT doc FROM subject_token_keys WHERE kid = ?", (kid,)).fetchone()
    return doc


def token(kid: str, secret: str, clock: FixedClock) -> str:
    iat = int(clock().timestamp())
    return jwt.encode({"sub": "u1", "iat": iat, "exp": iat + 600}, secret, algorithm="HS256", headers={"kid": kid})


@pytest.fixture
def make(tmp_path, clock):
    db = str(tmp_path / "consent.db")
    apps = []

    def app_with(passphrase: str | None):
        app = create_app(Settings(database_url=f"sqlite:///{db}", admin_token=OPERATOR_TOKEN,
                                  key_encryption_key=passphrase), clock=clock)
        apps.append(app)
        return app.test_client()

    yield db, app_with
    for app in apps:
        app.extensions["consent_api.deps"].store.close()


def new_tenant(client) -> TenantActions:
    created = client.post("/v1/tenants", json={"name": "Acme"}, headers=bearer(OPERATOR_TOKEN)).json
    return TenantActions(client, created["id"], created["admin_key"])


def test_a_secret_is_sealed_at_rest_and_still_verifies(make, clock):
    db, app_with = make
    tenant = new_tenant(app_with(PASSPHRASE))
    issued = tenant.post("/v1/subject-token-keys", {"alg": "HS256"}).json
    doc = stored_material(db, issued["kid"])
    assert issued["secret"] not in doc and sealed.PREFIX in doc
    assert tenant.get("/v1/subjects/u1/consents", key=token(issued["kid"], issued["secret"], clock)).status_code == 404

    # another worker (or a restart) with the same passphrase reads it too
    other = TenantActions(app_with(PASSPHRASE), tenant.id, tenant.key)
    assert other.get("/v1/subjects/u1/consents", key=token(issued["kid"], issued["secret"], clock)).status_code == 404


def test_a_plain_secret_from_before_the_passphrase_keeps_working(make, clock):
    db, app_with = make
    tenant = new_tenant(app_with(None))
    issued = tenant.post("/v1/subject-token-keys", {"alg": "HS256"}).json
    assert issued["secret"] in stored_material(db, issued["kid"])  # no passphrase: stored as it is
    later = TenantActions(app_with(PASSPHRASE), tenant.id, tenant.key)
    assert later.get("/v1/subjects/u1/consents", key=token(issued["kid"], issued["secret"], clock)).status_code == 404


@pytest.mark.parametrize("passphrase", [None, "another passphrase"])
def test_a_sealed_secret_without_its_passphrase_is_a_503_not_a_token(make, clock, passphrase):
    db, app_with = make
    # the service's own signing key was made before the passphrase was set (so it is plain,
    # and a worker starts without the passphrase); the subject-token secret after it
    tenant = new_tenant(app_with(None))
    sealing = TenantActions(app_with(PASSPHRASE), tenant.id, tenant.key)
    issued = sealing.post("/v1/subject-token-keys", {"alg": "HS256"}).json
    elsewhere = TenantActions(app_with(passphrase), tenant.id, tenant.key)
    response = elsewhere.get("/v1/subjects/u1/consents", key=token(issued["kid"], issued["secret"], clock))
    assert response.status_code == 503 and response.mimetype == "application/problem+json"
    assert "CONSENT_KEY_ENCRYPTION_KEY" in response.json["detail"]
    assert issued["secret"] not in response.get_data(as_text=True)


def test_a_sealed_secret_opens_only_for_its_own_key():
    material = sealed.seal("sts_secret", PASSPHRASE, "stk_1")
    assert sealed.unseal(material, PASSPHRASE, "stk_1") == "sts_secret"
    assert sealed.unseal("sts_plain", PASSPHRASE, "stk_1") == "sts_plain"
    from consent_api.errors import Unavailable

    for passphrase, kid, value in ((PASSPHRASE, "stk_2", material), ("other", "stk_1", material),
                                   (PASSPHRASE, "stk_1", material[:-4] + "AAAA"), (PASSPHRASE, "stk_1", "enc1:x")):
        with pytest.raises(Unavailable):
            sealed.unseal(value, passphrase, kid)
