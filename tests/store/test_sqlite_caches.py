"""SQLiteStore's per-process caches of API keys and the catalog. Two stores on one file stand
for two worker processes: a catalog change made by one, the other sees within VERSION_CHECK_S
(new purposes at once); credentials (new keys, revocations) at once, since the credentials
counter is read on every key lookup; what a store changes itself, it sees at once."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from consent_api.domain.model import SubjectTokenKey
from consent_api.store.sqlite import VERSION_CHECK_S, SQLiteStore, connection
from tests.store.drafts import api_key, at, policy, purpose, tenant


@pytest.fixture
def two_workers(tmp_path):
    path = str(tmp_path / "consent.db")
    first, second = SQLiteStore(path), SQLiteStore(path)
    first.create_tenant(tenant())
    yield first, second
    first.close()
    second.close()


def after_the_version_check() -> None:
    time.sleep(VERSION_CHECK_S * 1.5)


@pytest.fixture
def long_version_memo(monkeypatch):
    """However long the version memo lasts, a revocation must not wait for it."""
    monkeypatch.setattr(connection, "VERSION_CHECK_S", 3600.0)


@pytest.mark.usefixtures("long_version_memo")
def test_a_revocation_in_another_process_takes_effect_at_once(two_workers):
    first, second = two_workers
    first.add_api_key(api_key("k1", key_hash="h1"))
    for _ in range(3):
        assert second.find_api_key("h1").revoked_at is None  # cached by the second worker

    first.revoke_api_key("t1", "k1", at(5))
    assert second.find_api_key("h1").revoked_at == at(5)
    assert first.find_api_key("h1").revoked_at == at(5)


@pytest.mark.usefixtures("long_version_memo")
def test_a_revoked_subject_token_key_stops_at_once_too(two_workers):
    first, second = two_workers
    first.add_subject_token_key(SubjectTokenKey("stk_1", "t1", "HS256", "secret", at(0)))
    assert second.find_subject_token_key("stk_1").revoked_at is None
    first.revoke_subject_token_key("t1", "stk_1", at(5))
    assert second.find_subject_token_key("stk_1").revoked_at == at(5)


def test_a_new_key_works_at_once_everywhere(two_workers):
    first, second = two_workers
    assert second.find_api_key("h2") is None
    first.add_api_key(api_key("k2", key_hash="h2"))
    assert second.find_api_key("h2").id == "k2"


def test_catalog_changes_reach_other_processes(two_workers):
    first, second = two_workers
    first.put_purpose("t1", purpose("push"))
    first.add_policy("t1", policy("v1"))
    assert second.get_purpose("t1", "push").archived is False
    assert [p.version for p in second.list_policies("t1")] == ["v1"]

    first.put_purpose("t1", purpose("sms"))  # a purpose created elsewhere is found at once
    assert second.get_purpose("t1", "sms").key == "sms"

    first.put_purpose("t1", replace(purpose("push"), archived=True))
    first.add_policy("t1", policy("v2", material=True))
    assert first.get_purpose("t1", "push").archived is True
    after_the_version_check()
    assert second.get_purpose("t1", "push").archived is True
    assert [p.version for p in second.list_policies("t1")] == ["v1", "v2"]
    assert [p.key for p in second.list_purposes("t1")] == ["push", "sms"]


def test_cached_catalogs_are_per_tenant(two_workers):
    first, _ = two_workers
    first.create_tenant(tenant("t2"))
    first.put_purpose("t1", purpose("push"))
    assert first.list_purposes("t2") == []
    first.put_purpose("t2", purpose("location"))
    assert [p.key for p in first.list_purposes("t1")] == ["push"]
    assert [p.key for p in first.list_purposes("t2")] == ["location"]


def test_callers_cannot_change_the_cached_lists(two_workers):
    first, _ = two_workers
    first.put_purpose("t1", purpose("push"))
    first.list_purposes("t1").clear()
    first.list_policies("t1").append(policy("x"))
    assert [p.key for p in first.list_purposes("t1")] == ["push"]
    assert first.list_policies("t1") == []
