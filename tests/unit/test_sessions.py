"""Page sessions as a service, with a fixed clock: idle and absolute expiry, sign-in rotation,
sign-out on the server, and the CSRF comparison."""

from __future__ import annotations

from datetime import timedelta

import pytest

from consent_api.domain.clock import FixedClock
from consent_api.security.signing_keys import KeyRing
from consent_api.services import sessions
from consent_api.services.deps import Deps
from consent_api.services.sessions import SessionRules
from consent_api.store.sqlite import SQLiteStore

RULES = SessionRules(idle=timedelta(minutes=30), lifetime=timedelta(hours=2))


@pytest.fixture
def clock():
    return FixedClock("2026-03-01T08:00:00Z")


@pytest.fixture
def deps(clock):
    store = SQLiteStore(":memory:")
    yield Deps(store, clock, KeyRing(store, clock))
    store.close()


def test_the_cookie_token_opens_its_session_and_the_store_keeps_only_its_hash(deps):
    started = sessions.start(deps, "privacy", RULES, tenant_id="t1", subject_id="u1", locale="zh-CN")

    assert deps.store.get_session(started.token) is None
    assert deps.store.get_session(sessions.token_hash(started.token)) == started.session
    assert sessions.resume(deps, "privacy", RULES, started.token) == started.session
    assert len(started.token) >= 43 and started.session.csrf != started.token


def test_a_session_of_another_kind_or_an_unknown_token_opens_nothing(deps):
    started = sessions.start(deps, "privacy", RULES, tenant_id="t1", subject_id="u1")

    assert sessions.resume(deps, "console", RULES, started.token) is None
    for token in (None, "", "nope", "x" * 5000):
        assert sessions.resume(deps, "privacy", RULES, token) is None


def test_the_idle_timeout_counts_from_the_last_activity(deps, clock):
    started = sessions.start(deps, "privacy", RULES, tenant_id="t1", subject_id="u1")
    clock.advance(minutes=29)
    alive = sessions.resume(deps, "privacy", RULES, started.token)
    sessions.touch(deps, alive)
    clock.advance(minutes=29)
    assert sessions.resume(deps, "privacy", RULES, started.token) is not None

    clock.advance(minutes=1)
    assert sessions.resume(deps, "privacy", RULES, started.token) is None
    assert deps.store.get_session(started.session.token_hash) is None  # deleted, not only refused


def test_the_absolute_lifetime_ends_even_an_active_session(deps, clock):
    started = sessions.start(deps, "console", RULES, tenant_id="t1", key_id="k1", scopes=("admin",))
    for _ in range(7):
        clock.advance(minutes=17)
        found = sessions.resume(deps, "console", RULES, started.token)
        assert found is not None
        sessions.touch(deps, found)
    clock.advance(minutes=2 * 60 - 7 * 17)
    assert sessions.resume(deps, "console", RULES, started.token) is None


def test_touch_writes_at_most_every_few_seconds_but_always_a_new_locale(deps, clock):
    started = sessions.start(deps, "privacy", RULES, tenant_id="t1", subject_id="u1")
    clock.advance(seconds=1)
    assert sessions.touch(deps, started.session) == started.session
    touched = sessions.touch(deps, started.session, "en")
    assert touched.locale == "en" and deps.store.get_session(touched.token_hash).locale == "en"
    clock.advance(seconds=20)
    again = sessions.touch(deps, touched)
    assert deps.store.get_session(touched.token_hash).last_seen_at == again.last_seen_at == clock()


def test_signing_in_ends_the_old_session_and_keeps_its_locale(deps):
    anonymous = sessions.start(deps, "console", RULES, locale="zh-CN")
    signed_in = sessions.rotate(deps, "console", RULES, anonymous.session, tenant_id="t1", key_id="k1",
                                scopes=("audit:read",))

    assert signed_in.token != anonymous.token
    assert sessions.resume(deps, "console", RULES, anonymous.token) is None
    found = sessions.resume(deps, "console", RULES, signed_in.token)
    assert (found.tenant_id, found.key_id, found.scopes, found.locale) == ("t1", "k1", ("audit:read",), "zh-CN")


def test_signing_out_ends_the_session_on_the_server(deps):
    started = sessions.start(deps, "console", RULES, tenant_id="t1", key_id="k1")
    sessions.end(deps, started.session)
    assert sessions.resume(deps, "console", RULES, started.token) is None


def test_csrf_tokens_match_only_their_own_session(deps):
    one = sessions.start(deps, "privacy", RULES, tenant_id="t1", subject_id="u1").session
    other = sessions.start(deps, "privacy", RULES, tenant_id="t1", subject_id="u2").session

    assert sessions.csrf_matches(one, one.csrf)
    for sent in (None, "", other.csrf, one.csrf + "x", "é"):
        assert not sessions.csrf_matches(one, sent)
    assert not sessions.csrf_matches(None, one.csrf)
