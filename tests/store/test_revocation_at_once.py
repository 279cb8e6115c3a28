"""A revoked API key stops working at once in every process that shares the SQLite file, not
within VERSION_CHECK_S: the credentials counter is read on every key lookup (the catalog keeps
its memo). Two stores on one file stand for two worker processes."""

from __future__ import annotations

import pytest

from consent_api.store import sqlite
from consent_api.store.sqlite import SQLiteStore
from tests.store.drafts import api_key, at, tenant


@pytest.fixture
def two_workers(tmp_path, monkeypatch):
    # However long the version memo lasts, a revocation must not wait for it.
    monkeypatch.setattr(sqlite, "VERSION_CHECK_S", 3600.0)
    path = str(tmp_path / "consent.db")
    first, second = SQLiteStore(path), SQLiteStore(path)
    first.create_tenant(tenant())
    yield first, second
    first.close()
    second.close()


def test_a_revocation_in_another_process_takes_effect_at_once(two_workers):
    first, second = two_workers
    first.add_api_key(api_key("k1", key_hash="h1"))
    for _ in range(3):
        assert second.find_api_key("h1").revoked_at is None  # cached by the second worker

    first.revoke_api_key("t1", "k1", at(5))
    assert second.find_api_key("h1").revoked_at == at(5)
    assert first.find_api_key("h1").revoked_at == at(5)


def test_a_revoked_subject_token_key_stops_at_once_too(two_workers):
    from consent_api.domain.model import SubjectTokenKey

    first, second = two_workers
    first.add_subject_token_key(SubjectTokenKey("stk_1", "t1", "HS256", "secret", at(0)))
    assert second.find_subject_token_key("stk_1").revoked_at is None
    first.revoke_subject_token_key("t1", "stk_1", at(5))
    assert second.find_subject_token_key("stk_1").revoked_at == at(5)
