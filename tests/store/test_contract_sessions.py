"""Contract, every adapter: page sessions and one-time link codes (web/pages/, services/sessions.py).

Times are near the wall clock, taken when each test starts: MongoDB's TTL monitor, and mongomock's
imitation of it, remove records whose absolute end has passed by the real time."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from consent_api.domain.model import LinkCode, PageSession
from consent_api.errors import Conflict

_started = [datetime.now(timezone.utc)]


@pytest.fixture(autouse=True)
def _test_start():
    _started[0] = datetime.now(timezone.utc).replace(microsecond=0)


def fresh(minutes: float = 0) -> datetime:
    """The test's start + minutes (so a long run never finds a record already past its TTL)."""
    return _started[0] + timedelta(minutes=minutes)


def session(token_hash: str = "h1", *, tenant_id: str | None = "t1", subject_id: str | None = "u1",
            key_id: str | None = None, minutes: float = 60, **fields) -> PageSession:
    return PageSession(token_hash=token_hash, kind=fields.pop("kind", "privacy"), csrf="csrf-" + token_hash,
                       created_at=fresh(), last_seen_at=fresh(), expires_at=fresh(minutes), tenant_id=tenant_id,
                       subject_id=subject_id, key_id=key_id, **fields)


def code(code_hash: str = "c1", *, tenant_id: str = "t1", subject_id: str = "u1", minutes: float = 10) -> LinkCode:
    return LinkCode(code_hash=code_hash, tenant_id=tenant_id, subject_id=subject_id, created_at=fresh(),
                    expires_at=fresh(minutes))


def test_a_session_is_stored_and_found_by_its_hash_only(store):
    stored = session(scopes=("admin", "audit:read"), kind="console", subject_id=None, key_id="k1", locale="zh-CN")
    store.put_session(stored)

    assert store.get_session("h1") == stored
    assert store.get_session("h2") is None
    with pytest.raises(Conflict):
        store.put_session(stored)


def test_a_session_without_an_identity_yet_is_stored_too(store):
    anonymous = session(tenant_id=None, subject_id=None)
    store.put_session(anonymous)
    assert store.get_session("h1") == anonymous


def test_touching_moves_last_seen_and_remembers_a_locale(store):
    store.put_session(session())
    store.touch_session("h1", fresh(5))
    assert store.get_session("h1") == replace(session(), last_seen_at=fresh(5))

    store.touch_session("h1", fresh(6), "en")
    assert store.get_session("h1") == replace(session(), last_seen_at=fresh(6), locale="en")
    store.touch_session("unknown", fresh(7), "en")  # no-op
    assert store.get_session("unknown") is None


def test_deleting_a_session_ends_it_and_leaves_the_others(store):
    store.put_session(session("h1"))
    store.put_session(session("h2"))
    store.delete_session("h1")
    store.delete_session("h1")  # no-op the second time

    assert store.get_session("h1") is None
    assert store.get_session("h2") is not None


def test_sessions_end_per_subject_or_per_key_within_one_tenant(store):
    store.put_session(session("a", subject_id="u1"))
    store.put_session(session("b", subject_id="u1"))
    store.put_session(session("c", subject_id="u2"))
    store.put_session(session("d", tenant_id="t2", subject_id="u1"))  # another tenant's u1
    store.put_session(session("e", kind="console", subject_id=None, key_id="k1"))
    store.put_session(session("f", kind="console", tenant_id="t2", subject_id=None, key_id="k1"))

    assert store.delete_sessions("t1", subject_id="u1") == 2
    assert store.delete_sessions("t1", key_id="k1") == 1

    left = {h for h in "abcdef" if store.get_session(h) is not None}
    assert left == {"c", "d", "f"}
    with pytest.raises(ValueError):
        store.delete_sessions("t1")


def test_a_link_code_opens_once(store):
    store.add_link_code(code())

    assert store.consume_link_code("c1", fresh()) == code()
    assert store.consume_link_code("c1", fresh()) is None
    assert store.consume_link_code("unknown", fresh()) is None
    with pytest.raises(Conflict):
        store.add_link_code(code("c2"))
        store.add_link_code(code("c2"))


def test_an_expired_link_code_opens_nothing_and_is_gone(store):
    store.add_link_code(code(minutes=10))

    assert store.consume_link_code("c1", fresh(10)) is None  # its end is not inside its life
    store.add_link_code(code(minutes=10))  # consumed even though refused: the hash is free again
    assert store.consume_link_code("c1", fresh(9)) is not None


def test_expired_records_are_purged(store):
    store.put_session(session("old", minutes=-1))
    store.add_link_code(code("old", minutes=-1))
    store.put_session(session("new"))
    store.add_link_code(code("new"))

    assert store.get_session("old") is None
    assert store.consume_link_code("old", fresh(-5)) is None
    assert store.get_session("new") is not None


def test_a_link_code_keeps_its_tenant_and_subject(store):
    store.add_link_code(code("x", tenant_id="t2", subject_id="u9", minutes=3))
    found = store.consume_link_code("x", fresh())
    assert (found.tenant_id, found.subject_id) == ("t2", "u9")
