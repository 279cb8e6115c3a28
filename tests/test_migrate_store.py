"""migrate-store: a SQLite store with a mixed history copied to MongoDB (mongomock), verified,
re-run as a no-op, resumed after an interruption; and `consent-api migrate`."""

from __future__ import annotations

import pytest

from consent_api.cli import main
from consent_api.security.signing_keys import KeyRing
from consent_api.services.migration import copy_store, verify_copy
from consent_api.services.rebuild import rebuild_state
from consent_api.store import open as store_open
from consent_api.store.open import open_store
from consent_api.store.sqlite import SCHEMA_VERSION
from consent_api.web.app import create_app
from tests import builders
from tests.support.apps import ON_A_SQLITE_FILE

SUBJECTS = 24
pytestmark = ON_A_SQLITE_FILE  # the source store is opened again by the migration


@pytest.fixture
def source_url(settings) -> str:
    return settings.database_url


@pytest.fixture
def history(app, new_tenant, clock, source_url):
    """Two tenants with grants, refusals, withdrawals, prompts, minors, an erasure, a returning
    subject, revoked keys, subject-token keys, a material policy update and a rotated signing key."""
    acme = new_tenant("Acme")
    acme.purpose("location", kind="device_permission")
    acme.purpose("marketing_sms", kind="marketing")
    acme.purpose("account", essential=True)
    acme.put("/v1/vendors/getui", builders.make_vendor())
    reader = acme.issue_key("consents:read")
    acme.issue_key(type="publishable", origins=["https://shop.example"])
    leaked = acme.post("/v1/keys", {"name": "leaked", "type": "secret", "scopes": ["consents:write"]}).json
    assert acme.delete(f"/v1/keys/{leaked['id']}").status_code in (200, 204)
    assert acme.post("/v1/subject-token-keys", {"alg": "HS256"}).status_code == 201
    for n in range(SUBJECTS):
        subject = f"user-{n:03d}"
        acme.grant(subject, "push", "location") if n % 3 else acme.refuse(subject, "push", "marketing_sms")
        clock.advance(minutes=7)
        if n % 4 == 0:
            assert acme.post(f"/v1/subjects/{subject}/prompts",
                             {"purposes": ["marketing_sms"], "source": {"channel": "android"}}).status_code == 201
        if n % 5 == 0:
            assert acme.post(f"/v1/subjects/{subject}/consents/withdraw-all",
                             {"source": {"channel": "web"}}).status_code == 200
        if n % 6 == 0:
            acme.grant(subject, "marketing_sms", age_band="adult")
    acme.policy("2026-02", effective_at="2026-02-15T00:00:00Z", material=True)
    assert acme.delete("/v1/subjects/user-001").status_code == 204  # erased: a chain without a subject
    assert acme.delete("/v1/subjects/user-002").status_code == 204
    acme.grant("user-002", "push", policy_version="2026-02")  # back again, under a new chain
    beta = new_tenant("Beta")
    for subject in ("b-1", "b-2"):
        beta.grant(subject, "push")
    KeyRing(app.extensions["consent_api.deps"].store, clock).rotate()
    return {"acme": acme, "beta": beta, "reader": reader}


@pytest.fixture
def target():
    return open_store("mongomock://target")


def state(client, tenant, subject):
    return client.get(f"/v1/subjects/{subject}/consents", headers=tenant.headers).json


def test_a_mixed_history_moves_to_mongodb_verified_chain_by_chain(history, source_url, target, settings, clock,
                                                                  new_app):
    source = open_store(source_url)
    expected_chains = SUBJECTS + 1 + 2  # Acme's subjects, user-002's second chain, Beta's two

    copied = copy_store(source, target)
    verdict = verify_copy(source, target)

    assert verdict.ok, verdict.mismatches
    assert (copied.tenants, copied.chains, copied.chains_already_there) == (2, expected_chains, 0)
    assert copied.api_keys == 5 and copied.subject_token_keys == 1 and copied.signing_keys == 2
    assert verdict.chains == expected_chains and verdict.subjects == expected_chains - 2
    assert copied.events == verdict.events == target.db["events"].count_documents({})
    report = rebuild_state(target, fix=False)
    assert (report.differences, report.broken_chains) == ([], [])
    for tenant in source.iter_tenants():
        assert list(source.iter_chains(tenant.id)) == list(target.iter_chains(tenant.id))

    # the API on the migrated store answers as before, to the same keys, with the same signing keys
    before = new_app().test_client()
    after = create_app(settings, store=target, clock=clock).test_client()
    acme = history["acme"]
    for subject in ("user-000", "user-004", "user-002", "user-005"):
        assert state(after, acme, subject) == state(before, acme, subject)
    assert state(after, acme, "user-001") == state(before, acme, "user-001")  # erased: 404 both
    assert after.get("/.well-known/jwks.json").json == before.get("/.well-known/jwks.json").json
    assert after.get("/v1/subjects/user-003/consents",
                     headers={"Authorization": f"Bearer {history['reader']}"}).status_code == 200
    assert after.get("/v1/keys", headers=acme.headers).json == before.get("/v1/keys", headers=acme.headers).json


def test_a_second_run_writes_nothing(history, source_url, target):
    source = open_store(source_url)
    first = copy_store(source, target)
    events = target.db["events"].count_documents({})

    again = copy_store(source, target)

    assert (again.tenants, again.catalog_entries, again.chains, again.events, again.api_keys,
            again.subject_token_keys, again.signing_keys) == (0, 0, 0, 0, 0, 0, 0)
    assert again.chains_already_there == first.chains
    assert target.db["events"].count_documents({}) == events
    assert verify_copy(source, target).ok


class Interrupted(Exception):
    """Stands for a killed process or a lost connection mid-copy."""


class StopsAfter:
    """A target store whose process dies after importing n chains."""

    def __init__(self, store, n: int):
        self._store, self._left = store, n

    def __getattr__(self, name):
        return getattr(self._store, name)

    def import_chain(self, *args, **kwargs):
        if self._left == 0:
            raise Interrupted
        self._left -= 1
        return self._store.import_chain(*args, **kwargs)


def test_an_interrupted_run_resumes_where_it_stopped(history, source_url, target):
    source = open_store(source_url)
    with pytest.raises(Interrupted):
        copy_store(source, StopsAfter(target, 9))
    assert not verify_copy(source, target).ok
    # and a later chain died half-copied: its first event is there, its record not yet updated
    chains = [(t.id, c) for t in source.iter_tenants() for c in source.iter_chains(t.id)]
    tenant_id, torn = next((t, c) for t, c in chains[9:] if c.events > 1)
    target.db["events"].insert_one(dict(source.subject_events(tenant_id, torn.subject_ref)[0]))

    resumed = copy_store(source, target)

    assert (resumed.chains_already_there, resumed.chains) == (9, len(chains) - 9)
    verdict = verify_copy(source, target)
    assert verdict.ok, verdict.mismatches
    assert rebuild_state(target, fix=False).differences == []


def test_verification_finds_a_chain_that_differs(history, source_url, target):
    source = open_store(source_url)
    copy_store(source, target)
    chain = next(c for c in source.iter_chains(history["acme"].id) if c.subject_id == "user-003")
    target.db["events"].delete_one({"subject_ref": chain.subject_ref, "seq": chain.seq})

    verdict = verify_copy(source, target)

    assert not verdict.ok
    assert any(f"chain {chain.subject_ref}: source subject user-003, {chain.events} events" in m
               for m in verdict.mismatches)
    assert verdict.summary().startswith("MISMATCH")


# --- the commands ----------------------------------------------------------------------------------

@pytest.fixture
def cli_target(target, monkeypatch):
    """mongomock://target names one in-process store, so a second command sees the first's writes."""
    real = store_open.open_store

    def opening(url, *args, **kwargs):
        return target if url == "mongomock://target" else real(url, *args, **kwargs)

    monkeypatch.setattr(store_open, "open_store", opening)
    return target


def test_migrate_store_command_copies_verifies_and_resumes(history, source_url, cli_target, capsys,
                                                             monkeypatch):
    assert main(["migrate-store", "--from", source_url, "--to", "mongomock://target"]) == 0
    out, err = capsys.readouterr()
    assert "verified: 2 tenants, 27 chains" in out and "every chain head" in out
    assert "copied 2 tenants" in err and "(0 already there)" in err
    assert "100% 25/25 chains" in err and "100% 2/2 chains" in err

    assert main(["migrate-store", "--from", source_url, "--to", "mongomock://target"]) == 0
    assert "0 chains (27 already there), 0 events" in capsys.readouterr().err

    monkeypatch.setenv("CONSENT_DATABASE_URL", "mongomock://target")
    assert main(["rebuild-state", "--check"]) == 0
    assert "25 subjects checked, 0 differences, 0 broken chains" in capsys.readouterr().err


def test_migrate_store_command_exits_non_zero_on_a_mismatch(history, source_url, cli_target, capsys):
    assert main(["migrate-store", "--from", source_url, "--to", "mongomock://target"]) == 0
    cli_target.db["events"].delete_many({"seq": 1, "purpose": "push", "action": "deny"})
    capsys.readouterr()

    assert main(["migrate-store", "--from", source_url, "--to", "mongomock://target"]) == 1

    out = capsys.readouterr().out
    assert "MISMATCH" in out and ": chain sr_" in out


def test_migrate_store_refuses_one_store_as_both_ends(source_url, capsys):
    assert main(["migrate-store", "--from", source_url, "--to", source_url]) == 2
    assert "same store" in capsys.readouterr().err


def test_migrate_store_never_prints_a_password(source_url, capsys, monkeypatch):
    monkeypatch.setattr(store_open, "open_store",
                        lambda url, *a, **k: open_store(source_url if url.startswith("sqlite") else "mongomock://x"))
    main(["migrate-store", "--from", source_url, "--to", "mongodb://admin:s3cret@db1.example/consent_api"])
    captured = capsys.readouterr()
    assert "s3cret" not in captured.out + captured.err
    assert "mongodb://admin:***@db1.example/consent_api" in captured.err


def test_migrate_prints_every_index_it_ensures(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("CONSENT_DATABASE_URL", "mongomock://ops")
    assert main(["migrate"]) == 0
    out = capsys.readouterr().out
    assert "events: index tenant_id_subject_ref_seq (tenant_id: 1, subject_ref: 1, seq: 1) unique=True ensured" in out
    assert "idempotency: index expires_at (expires_at: 1) expireAfterSeconds=0 ensured" in out

    monkeypatch.setenv("CONSENT_DATABASE_URL", f"sqlite:///{tmp_path}/ops.db")
    assert main(["migrate"]) == 0
    assert f"SQLite {tmp_path}/ops.db: schema version {SCHEMA_VERSION}" in capsys.readouterr().out
    assert main(["migrate", "--shard"]) == 2
    assert "applies to a MongoDB store" in capsys.readouterr().err


def test_a_copy_into_sqlite_stores_the_events_in_recorded_order(history, source_url, tmp_path):
    """Chains are copied one at a time; the SQLite target still ends up with its rows numbered in
    export order, which the audit export walks front to back, and with every index it had."""
    source = open_store(source_url)
    target = open_store(f"sqlite:///{tmp_path}/target.db")
    indexes = {row[0] for row in target._conn().execute(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events'")}

    copied = copy_store(source, target)

    assert verify_copy(source, target).ok and copied.events > SUBJECTS * 2
    conn = target._conn()
    by_row = [row[0] for row in conn.execute("SELECT event_id FROM events ORDER BY id")]
    in_time = [row[0] for row in conn.execute(
        "SELECT event_id FROM events ORDER BY tenant_id, recorded_at, seq, event_id")]
    by_chain = [row[0] for row in conn.execute("SELECT event_id FROM events ORDER BY tenant_id, subject_ref, seq")]
    assert by_row == in_time != by_chain
    assert {row[0] for row in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events'")} == indexes
    for tenant in source.iter_tenants():
        assert list(source.iter_chains(tenant.id)) == list(target.iter_chains(tenant.id))
    target.close()
