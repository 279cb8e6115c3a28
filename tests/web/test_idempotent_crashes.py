"""An idempotent write whose process dies part-way, then the client's retry with the same
Idempotency-Key once the dead attempt's claim has gone stale: whatever the point of the crash,
the ledger ends up with the request's events exactly once, and the retry is answered with them.

The crash is a BaseException raised where the process would die, so no handler runs (the claim
is not released, nothing is answered), as under kill -9."""

from __future__ import annotations

import pytest

from consent_api.domain.clock import system_clock
from tests.builders import ORIGIN, consents, decision
from tests.support.apps import ON_BOTH_STORES

pytestmark = ON_BOTH_STORES


class Crash(BaseException):
    """The process dies here."""


@pytest.fixture(autouse=True)
def clock_near_now(clock):
    """MongoDB (and mongomock) expire idempotency records by their own clock."""
    clock.now = system_clock().replace(microsecond=0)
    return clock


@pytest.fixture
def crash_once(app, monkeypatch):
    """crash_once(before=False): the next append dies before it writes, or once it has returned."""
    store = app.extensions["consent_api.deps"].store
    real = store.append

    def arm(before: bool = False) -> None:
        def append(*args, **kwargs):
            monkeypatch.setattr(store, "append", real)  # once
            if before:
                raise Crash
            real(*args, **kwargs)
            raise Crash

        monkeypatch.setattr(store, "append", append)

    return arm


@pytest.fixture
def writes(tenant):
    """(name, the request as a call, the subject it writes to, events it writes): every
    idempotent write, each needing one event's worth of setup."""
    publishable = tenant.issue_key(type="publishable", origins=[ORIGIN])
    tenant.grant("withdrawing", "push")
    tenant.post("/v1/public/consents", {"subject_id": "anon-linked", "decisions": [decision("push")],
                                        "policy_version": "2026-01"},
                headers={"Origin": ORIGIN}, token=publishable, expect=201)
    web = {"Origin": ORIGIN}
    return {
        "record": (lambda key: tenant.record("recording", decision("push"), headers={"Idempotency-Key": key}),
                   "recording", 1),
        "prompts": (lambda key: tenant.post("/v1/subjects/prompted/prompts",
                                            {"purposes": ["push"], "source": {"channel": "ios"}},
                                            headers={"Idempotency-Key": key}), "prompted", 1),
        "withdraw-all": (lambda key: tenant.post("/v1/subjects/withdrawing/consents/withdraw-all",
                                                 {"source": {"channel": "ios"}}, headers={"Idempotency-Key": key}),
                         "withdrawing", 1),
        "link": (lambda key: tenant.post("/v1/subjects/linking/links", {"anonymous_subject_id": "anon-linked"},
                                         headers={"Idempotency-Key": key}), "linking", 1),
        "public": (lambda key: tenant.post("/v1/public/consents",
                                           {"subject_id": "anon-web", "decisions": [decision("push")],
                                            "policy_version": "2026-01"},
                                           headers={**web, "Idempotency-Key": key}, token=publishable),
                   "anon-web", 1),
    }


def written_with(tenant, subject_id: str, key: str) -> list[str]:
    """Ids of the subject's events that carry this Idempotency-Key."""
    return [e["event_id"] for e in tenant.history(subject_id) if e["idempotency_key"] == key]


@pytest.mark.parametrize("crash_before_the_write", [False, True], ids=["after the write", "before it"])
@pytest.mark.parametrize("name", ["record", "prompts", "withdraw-all", "link", "public"])
def test_a_retry_after_a_crash_writes_once(tenant, clock, writes, crash_once, name, crash_before_the_write):
    send, subject, events = writes[name]
    key = f"retry-{name}"
    crash_once(before=crash_before_the_write)
    with pytest.raises(Crash):
        send(key)

    clock.advance(seconds=61)  # the dead attempt's claim is stale now
    answer = send(key)
    assert answer.status_code in (200, 201), answer.get_data(as_text=True)
    ids = written_with(tenant, subject, key)
    assert len(ids) == events, f"{name}: {len(ids)} events written for one request"
    assert [e["event_id"] for e in answer.json["events"]] == ids, "the retry answers with the events written"

    again = send(key)  # and from now on, that answer is the one replayed
    assert again.get_data() == answer.get_data() and again.headers["Idempotent-Replayed"] == "true"
    assert written_with(tenant, subject, key) == ids


def test_a_retry_while_the_claim_is_fresh_writes_nothing(tenant, writes, crash_once):
    send, subject, _ = writes["record"]
    crash_once(before=True)
    with pytest.raises(Crash):
        send("in-flight")
    assert send("in-flight").status_code == 409  # the first attempt may still be running
    assert tenant.get(f"/v1/subjects/{subject}/consents").status_code == 404


def test_a_decision_is_recorded_again_under_another_key(tenant, clock, writes, crash_once):
    """Recovery looks for the events of this request only: the same decision sent before
    under another key, or after the retry under a new one, is a write of its own."""
    send, subject, _ = writes["record"]
    first = send("first")
    crash_once()
    with pytest.raises(Crash):
        send("second")
    clock.advance(seconds=61)
    assert send("second").status_code == 201
    assert send("third").status_code == 201
    assert [len(written_with(tenant, subject, k)) for k in ("first", "second", "third")] == [1, 1, 1]
    assert first.json["events"][0]["event_id"] in written_with(tenant, subject, "first")


def test_a_subject_tokens_retry_is_recovered_for_that_subject_only(app_tenant, clock, crash_once):
    """Idempotency keys are scoped per credential: a subject token's dead claim finds the
    events of its own subject, not another's sent under the same key."""
    app_tenant.record("other", decision("personalized_push"), token=app_tenant.writer,
                      headers={"Idempotency-Key": "shared"}, expect=201)
    token = app_tenant.subject_token("mine", lifetime_s=3600)
    body = consents(decision("personalized_push"))
    crash_once()
    with pytest.raises(Crash):
        app_tenant.post("/v1/subjects/mine/consents", body, token=token, headers={"Idempotency-Key": "shared"})
    clock.advance(seconds=61)
    retried = app_tenant.post("/v1/subjects/mine/consents", body, token=token, headers={"Idempotency-Key": "shared"},
                              expect=201)
    assert len(written_with(app_tenant, "mine", "shared")) == 1
    assert len(written_with(app_tenant, "other", "shared")) == 1
    assert retried.json["events"][0]["subject_id"] == "mine"
