"""After an erasure, no byte of the subject's id is left in the store: not in a stored idempotent
answer (those that wrote nothing included), not in an idempotency scope (a subject token's), not
in a claim that never finished, not in an index or a freed page, and on SQLite not in the
write-ahead log once the erasure is answered. Checked by reading every file SQLite keeps (the
database, its -wal and -shm) and every MongoDB collection for the id."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from consent_api.domain.clock import system_clock
from consent_api.services import consents
from tests.builders import decision
from tests.support.apps import ON_A_SQLITE_FILE

SUBJECT = "erase-me-7f3a9c"  # no other value in the store contains it
ANON = "anon-erase-me-7f3a9c"  # the same visitor before signing in, on the web


class Crash(BaseException):
    """The process dies here (no handler runs)."""


def leave_traces(tenant, monkeypatch) -> None:
    """Every kind of record that holds the subject's id, through the HTTP API."""
    token = tenant.subject_token(SUBJECT, lifetime_s=3600)
    tenant.record(SUBJECT, decision("personalized_push"), decision("analytics_cookies"), token=token,
                  headers={"Idempotency-Key": "by-the-app"}, expect=201)  # scope: the token's kid and sub
    tenant.post(f"/v1/subjects/{SUBJECT}/prompts", {"purposes": ["location"], "source": {"channel": "ios"}},
                token=token, headers={"Idempotency-Key": "prompted"}, expect=201)
    for key in ("withdrew", "nothing-left"):  # the second writes nothing: its answer names no event
        tenant.post(f"/v1/subjects/{SUBJECT}/consents/withdraw-all", {"source": {"channel": "ios"}},
                    token=tenant.writer, headers={"Idempotency-Key": key}, expect=200)
    tenant.post(f"/v1/subjects/{SUBJECT}/links", {"anonymous_subject_id": "anon-never-seen"},
                token=tenant.writer, headers={"Idempotency-Key": "carried-nothing"}, expect=200)
    tenant.post("/v1/public/consents", {"subject_id": ANON, "decisions": [decision("analytics_cookies")],
                                        "policy_version": "2026-01"},
                token=tenant.publishable, headers={"Origin": "https://www.example.cn", "Idempotency-Key": "web"},
                expect=201)
    tenant.grant(SUBJECT, "marketing_sms")  # a row in the audience index

    def crash(*args, **kwargs):
        raise Crash

    monkeypatch.setattr(consents, "record", crash)
    with pytest.raises(Crash):  # a claim that never finished, its scope the token's
        tenant.record(SUBJECT, decision("personalized_push"), token=token, headers={"Idempotency-Key": "died"})
    monkeypatch.undo()


def erase(tenant) -> None:
    tenant.erase(SUBJECT)
    tenant.erase(ANON)
    tenant.get(f"/v1/subjects/{SUBJECT}/consents", expect=404)


@ON_A_SQLITE_FILE
def test_no_byte_of_an_erased_id_is_left_in_the_sqlite_files(app_tenant, database_url, monkeypatch):
    path = Path(database_url.removeprefix("sqlite:///"))
    leave_traces(app_tenant, monkeypatch)
    files = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
    assert any(SUBJECT.encode() in f.read_bytes() for f in files), "the traces are there before"

    erase(app_tenant)

    for f in files:
        data = f.read_bytes()
        for value in (SUBJECT, ANON):
            assert value.encode() not in data, f"{value} in {f.name} at byte {data.find(value.encode())}"


@ON_A_SQLITE_FILE
def test_the_log_holds_no_erased_id_once_the_erasure_is_answered(tenant, database_url):
    wal = Path(database_url.removeprefix("sqlite:///") + "-wal")
    tenant.grant(SUBJECT, "push")
    assert SUBJECT.encode() in wal.read_bytes()

    tenant.erase(SUBJECT)

    assert SUBJECT.encode() not in wal.read_bytes()
    assert wal.stat().st_size == 0, "the log was truncated"
    tenant.grant("someone-else", "push")  # and the store goes on
    assert tenant.state("someone-else")["purposes"]["push"]["allowed"] is True


@pytest.mark.parametrize("adapter", ["mongomock"], indirect=True)
def test_no_erased_id_is_left_in_any_mongodb_collection(app, app_tenant, clock, monkeypatch):
    clock.now = system_clock().replace(microsecond=0)  # MongoDB expires idempotency records by its clock
    db = app.extensions["consent_api.deps"].store.inner.db

    def holding(value: str) -> list[str]:
        return [f"{name}: {doc}" for name in db.list_collection_names()
                for doc in db[name].find() if value in json.dumps(doc, default=str, ensure_ascii=False)]

    leave_traces(app_tenant, monkeypatch)
    assert holding(SUBJECT), "the traces are there before"

    erase(app_tenant)

    assert holding(SUBJECT) == [] and holding(ANON) == []
