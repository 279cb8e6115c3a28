"""HS256 subject-token secrets at rest: sealed with CONSENT_KEY_ENCRYPTION_KEY when it is set,
like the service's own signing keys; secrets stored before it was set keep working; a sealed
secret without the passphrase (or with another) is a 503 that names the setting, never a 500
and never an accepted token."""

from __future__ import annotations

import sqlite3

import jwt
import pytest

from consent_api.domain.clock import FixedClock
from consent_api.errors import Unavailable
from consent_api.security import sealed
from tests.support.api import Api, Tenant
from tests.support.apps import ON_A_SQLITE_FILE

pytestmark = ON_A_SQLITE_FILE  # several apps (workers, restarts) on one store, read as bytes too
PASSPHRASE = "a passphrase only the operator knows"


def stored_material(database_url: str, kid: str) -> str:
    with sqlite3.connect(database_url.removeprefix("sqlite:///")) as conn:
        (doc,) = conn.execute("SELECT doc FROM subject_token_keys WHERE kid = ?", (kid,)).fetchone()
    return doc


def token(kid: str, secret: str, clock: FixedClock) -> str:
    iat = int(clock().timestamp())
    return jwt.encode({"sub": "u1", "iat": iat, "exp": iat + 600}, secret, algorithm="HS256", headers={"kid": kid})


@pytest.fixture
def worker(new_app):
    """worker(passphrase, tenant=None): a worker on the test's store with this
    CONSENT_KEY_ENCRYPTION_KEY, acting as `tenant` (a new tenant when None)."""

    def make(passphrase: str | None, tenant: Tenant | None = None) -> Tenant:
        api = Api(new_app(key_encryption_key=passphrase).test_client())
        if tenant is None:
            return api.new_tenant(purposes=None)
        return Tenant(api, tenant.id, tenant.admin)

    return make


def test_a_secret_is_sealed_at_rest_and_still_verifies(worker, database_url, clock):
    tenant = worker(PASSPHRASE)
    issued = tenant.subject_token_key("HS256")
    doc = stored_material(database_url, issued["kid"])
    assert issued["secret"] not in doc and sealed.PREFIX in doc
    tenant.get("/v1/subjects/u1/consents", token=token(issued["kid"], issued["secret"], clock), expect=404)

    # another worker (or a restart) with the same passphrase reads it too
    other = worker(PASSPHRASE, tenant)
    other.get("/v1/subjects/u1/consents", token=token(issued["kid"], issued["secret"], clock), expect=404)


def test_a_plain_secret_from_before_the_passphrase_keeps_working(worker, database_url, clock):
    tenant = worker(None)
    issued = tenant.subject_token_key("HS256")
    assert issued["secret"] in stored_material(database_url, issued["kid"])  # no passphrase: stored as it is
    later = worker(PASSPHRASE, tenant)
    later.get("/v1/subjects/u1/consents", token=token(issued["kid"], issued["secret"], clock), expect=404)


@pytest.mark.parametrize("passphrase", [None, "another passphrase"])
def test_a_sealed_secret_without_its_passphrase_is_a_503_not_a_token(worker, clock, passphrase):
    # the service's own signing key was made before the passphrase was set (so it is plain,
    # and a worker starts without the passphrase); the subject-token secret after it
    tenant = worker(None)
    issued = worker(PASSPHRASE, tenant).subject_token_key("HS256")
    elsewhere = worker(passphrase, tenant)
    response = elsewhere.get("/v1/subjects/u1/consents", token=token(issued["kid"], issued["secret"], clock))
    assert response.status_code == 503 and response.mimetype == "application/problem+json"
    assert "CONSENT_KEY_ENCRYPTION_KEY" in response.json["detail"]
    assert issued["secret"] not in response.get_data(as_text=True)


def test_a_sealed_secret_opens_only_for_its_own_key():
    material = sealed.seal("sts_secret", PASSPHRASE, "stk_1")
    assert sealed.unseal(material, PASSPHRASE, "stk_1") == "sts_secret"
    assert sealed.unseal("sts_plain", PASSPHRASE, "stk_1") == "sts_plain"
    for passphrase, kid, value in ((PASSPHRASE, "stk_2", material), ("other", "stk_1", material),
                                   (PASSPHRASE, "stk_1", material[:-4] + "AAAA"), (PASSPHRASE, "stk_1", "enc1:x")):
        with pytest.raises(Unavailable):
            sealed.unseal(value, passphrase, kid)
