import json

import pytest

from consent_api.cli import main
from consent_api.domain.model import PurposeRecord
from consent_api.store.open import open_store


@pytest.fixture
def db(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path}/cli.db"
    monkeypatch.setenv("CONSENT_DATABASE_URL", url)
    return url


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("serve", "tenant", "key", "seed-demo", "rebuild-state", "rotate-signing-key", "migrate",
                    "migrate-store", "tick-requests"):
        assert command in out


def test_tenant_and_key_create(db, capsys):
    assert main(["tenant", "create", "--name", "Acme"]) == 0
    tenant = json.loads(capsys.readouterr().out)
    assert tenant["admin_key"].startswith("sk_")
    assert main(["key", "create", "--tenant", tenant["id"], "--name", "reader",
                 "--scope", "consents:read"]) == 0
    assert json.loads(capsys.readouterr().out)["scopes"] == ["consents:read"]
    assert main(["key", "create", "--tenant", "ten_missing", "--name", "x", "--scope", "admin"]) == 2
    assert "unknown tenant" in capsys.readouterr().err
    assert main(["key", "create", "--tenant", tenant["id"], "--name", "web", "--type", "publishable"]) == 2
    assert "origins" in capsys.readouterr().err


def test_seed_demo_is_rerunnable(db, tmp_path, capsys):
    keys_file = tmp_path / "keys.env"
    assert main(["seed-demo", "--keys-file", str(keys_file)]) == 0
    assert main(["seed-demo"]) == 0
    err = capsys.readouterr().err
    assert "Created the demo tenant" in err and "Refreshed keys of the demo tenant" in err
    assert oct(keys_file.stat().st_mode & 0o777) == "0o600"
    assert "CONSENT_DEMO_PUBLISHABLE_KEY=pk_" in keys_file.read_text()
    store = open_store(db)
    tenants = list(store.iter_tenants())
    assert len(tenants) == 1
    purposes = {p.key: p for p in store.list_purposes(tenants[0].id)}
    assert {"personalized_push", "location", "photo_album", "contacts", "phone_number", "marketing_sms",
            "marketing_email", "analytics_cookies", "advertising_cookies", "third_party_sdk",
            "cross_border"} <= set(purposes)
    assert purposes["cross_border"].needs_separate and purposes["location"].title["zh-CN"] == "位置信息"


def test_rebuild_state_finds_and_repairs_drift(db, capsys):
    from consent_api.domain.clock import system_clock
    from consent_api.security.signing_keys import KeyRing
    from consent_api.services import consents
    from consent_api.services.consents import Decision, Submission
    from consent_api.services.demo import seed_demo
    from consent_api.services.deps import Deps

    store = open_store(db)
    deps = Deps(store, system_clock, KeyRing(store, system_clock))
    tenant_id, *_ = seed_demo(deps)
    for subject in ("a", "b", "c"):
        consents.record(deps, tenant_id, subject, Submission(
            [Decision("personalized_push", True), Decision("location", False)], "2026-01", {"channel": "ios"}))
    assert main(["rebuild-state", "--check"]) == 0
    assert "3 subjects checked, 0 differences" in capsys.readouterr().err

    drifted = store.get_subject(tenant_id, "b")
    store.replace_record(tenant_id, drifted.with_changes(
        purposes={**drifted.purposes, "personalized_push": PurposeRecord(action="deny")}))
    assert main(["rebuild-state", "--check"]) == 1
    captured = capsys.readouterr()
    assert "1 differences" in captured.err and "/b: purposes" in captured.out
    assert main(["rebuild-state"]) == 0
    assert store.get_subject(tenant_id, "b").purposes["personalized_push"].action == "grant"
    assert main(["rebuild-state", "--check"]) == 0


def test_rotate_signing_key(db, capsys):
    assert main(["rotate-signing-key"]) == 0
    assert main(["rotate-signing-key"]) == 0
    keys = open_store(db).list_signing_keys()
    assert len(keys) == 2 and [k["active"] for k in keys] == [False, True]


def test_bad_database_url_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setenv("CONSENT_DATABASE_URL", "postgres://nope")
    assert main(["tenant", "create", "--name", "x"]) == 2
    assert "unsupported database URL" in capsys.readouterr().err
