"""The delivery worker's rules, stepped with a fixed clock (Worker.run_once) against a real
receiver on 127.0.0.1: signing, at-least-once, per-subject order, retries with backoff, the
failed and disabled states, replay and retry. No sleeps: each round waits for its own sends."""

from __future__ import annotations

import contextlib
import json
import threading
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone

import pytest
from standardwebhooks.webhooks import Webhook as Verifier

from consent_api.domain.clock import FixedClock
from consent_api.domain.webhooks import IN_FLIGHT_PER_ENDPOINT, RETRY_FOR, RETRY_STEPS
from consent_api.outbound import sender
from consent_api.security.signing_keys import KeyRing
from consent_api.services import catalog, consents, delivery, requests, tenants, webhooks
from consent_api.services.consents import Decision, Submission
from consent_api.services.delivery import Worker
from consent_api.services.deps import Deps, WebhookRules
from consent_api.services.requests import Origin
from consent_api.store.open import open_store
from tests.support.receiver import receiving


@dataclass
class World:
    deps: Deps
    clock: FixedClock
    tenant_id: str

    def decide(self, subject: str, **granted: bool) -> dict:
        recorded = consents.record(self.deps, self.tenant_id, subject, Submission(
            [Decision(p, g) for p, g in granted.items()], "v1", {"channel": "ios"}))
        return recorded.events

    def hook(self, url: str, **filters) -> webhooks.Created:
        return webhooks.create(self.deps, self.tenant_id, url, **filters)

    def worker(self, **kw) -> Worker:
        return Worker(self.deps, **kw)

    def log(self, webhook_id: str) -> list:
        return list(reversed(webhooks.deliveries(self.deps, self.tenant_id, webhook_id, None, None, 500).items))


@pytest.fixture(params=["sqlite:///:memory:", "mongomock://worker"], ids=["sqlite", "mongomock"])
def world(request):
    # Standard Webhooks receivers refuse timestamps 5 minutes away from their clock: start at now.
    clock = FixedClock(datetime.now(timezone.utc).replace(microsecond=0))
    store = open_store(request.param)
    deps = Deps(store, clock, KeyRing(store, clock), webhooks=WebhookRules(allow_private=True))
    tenant, _ = tenants.create_tenant(deps, "Hooks")
    for key in ("push", "location", "sms"):
        catalog.put_purpose(deps, tenant.id, key, {"kind": "processing", "title": {"en": key}})
    catalog.publish_policy(deps, tenant.id, {"version": "v1", "effective_at": clock() - timedelta(days=1)})
    yield World(deps, clock, tenant.id)
    store.close()


def test_a_decision_reaches_the_receiver_signed_and_verifiable_with_standardwebhooks(world):
    with receiving() as receiver:
        created = world.hook(receiver.url)
        [event] = world.decide("alice", push=True)
        worker = world.worker()
        assert worker.run_once().sent == 1
        [got] = receiver.requests
        payload = Verifier(created.secret).verify(got.body, got.headers)  # raises unless signed by us
        assert payload["type"] == "consent.changed"
        assert payload["data"]["subject_id"] == "alice" and payload["data"]["tenant_id"] == world.tenant_id
        assert payload["data"]["event"]["event_id"] == event["event_id"]
        assert payload["data"]["state"]["status"] == "granted" and payload["data"]["state"]["allowed"] is True
        assert payload["timestamp"] == event["recorded_at"]
        assert got.id.startswith("msg_") and got.headers["content-type"] == "application/json"
        with pytest.raises(Exception, match="signature"):
            Verifier(webhooks.new_secret()).verify(got.body, got.headers)
        [row] = world.log(created.webhook.id)
        assert (row.status, row.attempt, row.response_status, row.event_id) == ("delivered", 1, 204,
                                                                                event["event_id"])
        worker.close()


def test_a_new_webhook_gets_only_what_was_committed_after_it(world):
    world.decide("before", push=True)
    with receiving() as receiver:
        world.hook(receiver.url)
        world.decide("after", push=False)
        world.worker().run_once()
        assert [e["data"]["subject_id"] for e in receiver.events] == ["after"]


def test_500_three_times_then_200_is_retried_with_backoff_and_logged_as_four_attempts(world):
    with receiving(answers=[500, 500, 500], status=200) as receiver:
        created = world.hook(receiver.url)
        world.decide("bob", push=True)
        worker = world.worker()
        for n in range(4):
            worker.run_once()
            assert len(receiver.requests) == n + 1  # exactly one more send after each failure
            worker.run_once()  # the retry is not due yet: nothing is sent
            assert len(receiver.requests) == n + 1
            if n < 3:
                world.clock.advance(seconds=RETRY_STEPS[n].total_seconds())
        assert len({r.id for r in receiver.requests}) == 1  # the same webhook-id every time
        rows = world.log(created.webhook.id)
        assert [(r.attempt, r.status, r.response_status) for r in rows] == [
            (1, "failed", 500), (2, "failed", 500), (3, "failed", 500), (4, "delivered", 200)]
        for n, row in enumerate(rows[:3]):
            assert RETRY_STEPS[n] / 2 <= row.next_attempt_at - row.at <= RETRY_STEPS[n]
        assert rows[3].next_attempt_at is None
        world.clock.advance(days=1)
        worker.run_once()
        assert len(receiver.requests) == 4


def test_a_subject_s_messages_go_one_at_a_time_in_ledger_order_others_flow(world):
    with receiving() as receiver:
        # carol's first delivery fails
        receiver.rule = lambda r: 503 if len([x for x in receiver.requests if b"carol" in x.body]) == 1 \
            and b"carol" in r.body else None
        world.hook(receiver.url)
        world.decide("carol", push=True)
        world.decide("carol", push=False)
        world.decide("dave", push=True)
        worker = world.worker()
        worker.run_once()
        # carol's first failed, so her second waits; dave's flows
        assert sorted((e["data"]["subject_id"], e["data"]["event"]["action"]) for e in receiver.events) == [
            ("carol", "grant"), ("dave", "grant")]
        world.clock.advance(seconds=5)
        worker.run_once()
        world.clock.advance(seconds=5)
        worker.run_once()
        carol = [e["data"]["event"]["action"] for e in receiver.events if e["data"]["subject_id"] == "carol"]
        assert carol == ["grant", "grant", "withdraw"]


def test_messages_are_failed_after_a_day_of_retries_and_the_endpoint_disabled_after_five(world):
    with receiving(status=500) as receiver:
        created = world.hook(receiver.url)
        webhook_id = created.webhook.id
        world.decide("erin", push=True)
        worker = world.worker()
        start = world.clock()
        while world.clock() - start < RETRY_FOR + timedelta(hours=5):
            worker.run_once()
            world.clock.advance(minutes=30)
        rows = world.log(webhook_id)
        assert rows[-1].status == "failed" and rows[-1].next_attempt_at is None
        assert rows[-1].at - rows[0].at >= RETRY_FOR
        assert world.deps.store.get_message(world.tenant_id, webhook_id, rows[0].message_id).status == "failed"
        assert len(rows) > len(RETRY_STEPS) + 4
        before = len(receiver.requests)
        for day in range(5):
            world.decide(f"day-{day}", push=True)
            world.clock.advance(days=1)
            worker.run_once()
        world.decide("last", push=True)
        worker.run_once()
        disabled = webhooks.get(world.deps, world.tenant_id, webhook_id)
        assert disabled.status == "disabled" and disabled.disabled_at - disabled.failing_since >= timedelta(days=5)
        [note] = [row for row in world.log(webhook_id) if row.type == "webhook.disabled"]
        assert note.at == disabled.disabled_at and note.message_id is None
        sent = len(receiver.requests)
        assert sent > before
        world.decide("after-disable", push=True)
        world.clock.advance(hours=1)
        worker.run_once()
        assert len(receiver.requests) == sent  # a disabled endpoint is sent nothing
        receiver.status = 200
        webhooks.update(world.deps, world.tenant_id, webhook_id, {"status": "enabled"})
        worker.run_once()
        subjects = {e["data"]["subject_id"] for e in receiver.events[sent:]}
        assert "after-disable" in subjects or "last" in subjects  # what was owed goes out once enabled


def test_a_receiver_down_for_100_decisions_gets_all_of_them_in_order_once_up(world):
    with receiving(status=503) as receiver:
        world.hook(receiver.url)
        written = []
        worker = world.worker()
        for n in range(100):
            written += world.decide(f"s{n % 7}", push=n % 3 != 0)
            if n % 20 == 0:
                worker.run_once()
        receiver.status = 204
        for _ in range(40):
            world.clock.advance(minutes=10)
            worker.run_once()
        delivered = [r for r in receiver.requests if r.json["data"]["event"]["event_id"]]
        got = {}
        for r in delivered:
            got.setdefault(r.json["data"]["event"]["event_id"], r.json)
        assert set(got) == {e["event_id"] for e in written}
        # per subject, the first arrival of each event is in seq order
        firsts: dict[str, list[int]] = {}
        seen = set()
        for r in delivered:
            event = r.json["data"]["event"]
            if event["event_id"] in seen:
                continue
            seen.add(event["event_id"])
            firsts.setdefault(event["subject_ref"], []).append(event["seq"])
        assert all(seqs == sorted(seqs) for seqs in firsts.values())


def test_replay_resends_from_a_cursor_with_the_same_webhook_ids(world):
    with receiving() as receiver:
        created = world.hook(receiver.url)
        world.decide("f1", push=True)
        world.decide("f2", location=True)
        worker = world.worker()
        worker.run_once()
        first = {r.json["data"]["subject_id"]: r.id for r in receiver.requests}
        assert len(first) == 2
        feed = consents_feed(world)
        webhooks.replay(world.deps, world.tenant_id, created.webhook.id, feed[0])
        worker.run_once()
        assert [r.id for r in receiver.requests[2:]] == [first["f2"]]  # events after the cursor, same ids
        webhooks.replay(world.deps, world.tenant_id, created.webhook.id, None)
        worker.run_once()
        assert sorted(r.id for r in receiver.requests[3:]) == sorted(first.values())
        worker.run_once()
        assert len(receiver.requests) == 5


def consents_feed(world) -> list[str]:
    """The cursor after each event of the tenant's feed."""
    from consent_api.services import changes

    cursors, after = [], None
    while True:
        page = changes.changes(world.deps, world.tenant_id, after, 1)
        if not page.items:
            return cursors
        after = page.next_cursor
        cursors.append(after)


def test_retry_sends_one_failed_message_again_now(world):
    with receiving(status=500) as receiver:
        created = world.hook(receiver.url)
        world.decide("g", push=True)
        worker = world.worker()
        worker.run_once()
        [failed] = world.log(created.webhook.id)[:1]
        receiver.status = 204
        pending = webhooks.retry(world.deps, world.tenant_id, created.webhook.id, failed.id)
        assert pending.status == "pending" and pending.attempt == 2 and pending.at == world.clock()
        worker.run_once()
        assert [r.id for r in receiver.requests] == [failed.message_id] * 2
        delivered = world.log(created.webhook.id)[-1]
        pending = webhooks.retry(world.deps, world.tenant_id, created.webhook.id, delivered.id)
        assert pending.attempt == 3
        worker.run_once()
        assert len(receiver.requests) == 3


def test_types_and_purposes_filter_and_other_message_types(world):
    with receiving() as everything, receiving() as only_sms, receiving() as erasures:
        world.hook(everything.url)
        world.hook(only_sms.url, types=["consent.changed"], purposes=["sms"])
        world.hook(erasures.url, types=["subject.erased", "policy.published"])
        world.decide("h", push=True, sms=False)
        consents.record_prompts(world.deps, world.tenant_id, "h", ["push"], {"channel": "ios"}, None, {})
        consents.erase(world.deps, world.tenant_id, "h", None)
        catalog.publish_policy(world.deps, world.tenant_id, {"version": "v2"})
        worker = world.worker()
        for _ in range(3):  # one message of subject h per round: they go out in ledger order
            worker.run_once()
        assert sorted(e["type"] for e in everything.events) == sorted(
            ["consent.changed", "consent.changed", "subject.erased", "policy.published"])
        assert [(e["type"], e["data"]["event"]["purpose"]) for e in only_sms.events] == [("consent.changed", "sms")]
        by_type = {e["type"]: e["data"] for e in erasures.events}
        assert by_type["subject.erased"] == {"tenant_id": world.tenant_id, "subject_id": "h"}
        assert by_type["policy.published"]["policy"]["version"] == "v2"


def test_rotation_signs_with_both_secrets_for_a_day(world):
    with receiving() as receiver:
        created = world.hook(receiver.url)
        rotated = webhooks.rotate_secret(world.deps, world.tenant_id, created.webhook.id)
        world.decide("i", push=True)
        worker = world.worker()
        worker.run_once()
        got = receiver.requests[-1]
        assert len(got.headers["webhook-signature"].split(" ")) == 2
        for secret in (created.secret, rotated.secret):
            Verifier(secret).verify(got.body, got.headers)
        world.clock.advance(hours=24, seconds=1)
        world.decide("j", push=True)
        worker.run_once()
        got = receiver.requests[-1]
        at = datetime.fromtimestamp(int(got.headers["webhook-timestamp"]), timezone.utc)
        assert got.headers["webhook-signature"] == Verifier(rotated.secret).sign(got.id, at, got.body)


def test_only_the_lease_holder_delivers(world):
    with receiving() as receiver:
        world.hook(receiver.url)
        world.decide("k", push=True)
        first, second = world.worker(), world.worker()
        assert first.run_once().leader
        assert not second.run_once().leader
        world.decide("l", push=True)
        assert second.run_once().sent == 0
        world.clock.advance(seconds=world.deps.webhooks.lease_s + 1)  # the first one died
        assert second.run_once().sent == 1
        assert len(receiver.requests) == 2


def test_a_test_message(world):
    with receiving() as receiver:
        created = world.hook(receiver.url, types=["policy.published"])
        row = webhooks.send_test(world.deps, world.tenant_id, created.webhook.id)
        assert row.status == "pending" and row.type == "webhook.test"
        world.worker().run_once()
        [got] = receiver.events
        assert got == {"type": "webhook.test", "timestamp": got["timestamp"],
                       "data": {"tenant_id": world.tenant_id, "webhook_id": created.webhook.id}}
        assert json.loads(receiver.requests[0].body) == got


def test_outcomes_recorded_twice_count_once(world):
    """A crash between sending and recording sends again (at least once) and the log stays whole."""
    with receiving() as receiver:
        created = world.hook(receiver.url)
        world.decide("m", push=True)
        worker = world.worker()
        worker.run_once()
        [row] = world.log(created.webhook.id)
        message = world.deps.store.get_message(world.tenant_id, created.webhook.id, row.message_id)
        # record the same delivered outcome again, as a restarted worker would after a crash
        from consent_api.store.delivery import Outcome

        world.deps.store.record_outcomes([Outcome(row, replace(message))])
        assert len(world.log(created.webhook.id)) == 1


# --- rights requests: request.* messages, and what an erasure leaves of them -----------------------------

ORIGIN = Origin({"channel": "ios"}, {"type": "self", "id": None, "reason": None})


def test_a_rights_request_makes_request_messages_with_due_soon_and_overdue_their_own_types(world):
    requests.put_settings(world.deps, world.tenant_id, {"days": 3, "calendar": "calendar_days"})
    with receiving() as everything, receiving() as deadlines:
        world.hook(everything.url)
        world.hook(deadlines.url, types=["request.due_soon", "request.overdue"])
        worker = world.worker()
        opened = requests.open_request(world.deps, world.tenant_id, "rita", "copy", "all my orders", ORIGIN)
        worker.run_once()
        sent = [(opened.to_dict(), "request.created")]
        for _ in range(5):  # a day at a time: due_soon with 2 days left, overdue once due_at has passed
            world.clock.advance(days=1)
            for _tenant, _id, notice in requests.tick(world.deps):
                worker.run_once()
                sent.append((requests.get(world.deps, world.tenant_id, opened.id).to_dict(), f"request.{notice}"))
        answered = requests.answer(world.deps, world.tenant_id, opened.id, "in_progress", "on it", None, ORIGIN)
        worker.run_once()
        sent.append((answered.to_dict(), "request.updated"))
        assert [e["type"] for e in everything.events] == [
            "request.created", "request.due_soon", "request.overdue", "request.updated"]
        for (request, type_), got in zip(sent, everything.events, strict=True):
            assert got["type"] == type_
            assert got["data"] == {"tenant_id": world.tenant_id, "subject_id": "rita", "request": request}
        assert [r["notices"] for r, _ in sent] == [[], ["due_soon"], ["due_soon", "overdue"], ["due_soon", "overdue"]]
        assert sent[0][0]["details"] == "all my orders"
        assert [e["type"] for e in deadlines.events] == ["request.due_soon", "request.overdue"]


def stored_text(world, webhook_id: str) -> str:
    """Every stored message body and delivery-log row of the endpoint, as one text."""
    rows = world.log(webhook_id)
    bodies = [world.deps.store.get_message(world.tenant_id, webhook_id, r.message_id).body
              for r in rows if r.message_id]
    return json.dumps([bodies, [repr(r) for r in rows]], ensure_ascii=False)


def test_an_erasure_leaves_the_subject_s_id_in_no_stored_message_but_an_undelivered_subject_erased(world):
    with receiving() as up, receiving(status=503) as down:
        told = world.hook(up.url)
        failing = world.hook(down.url)
        world.decide("erin", push=True)
        requests.open_request(world.deps, world.tenant_id, "erin", "delete", "remove erin's orders", ORIGIN)
        worker = world.worker()
        worker.run_once()  # consent.changed delivered to one, failed (to retry) at the other
        worker.run_once()  # request.created, the same
        assert "erin" in stored_text(world, told.webhook.id) and "erin" in stored_text(world, failing.webhook.id)

        consents.erase(world.deps, world.tenant_id, "erin", None)

        assert "erin" not in stored_text(world, told.webhook.id)  # delivered ones redacted
        assert "erin" not in stored_text(world, failing.webhook.id)  # pending ones too: they go out redacted
        world.clock.advance(hours=3)
        for _ in range(4):  # the retries, then request.updated (closed by the erasure), then subject.erased
            worker.run_once()
            world.clock.advance(hours=3)
        erased = [e for e in up.events if e["type"] == "subject.erased"]
        assert [e["data"]["subject_id"] for e in erased] == ["erin"]  # the receiver learns whom
        assert "erin" not in stored_text(world, told.webhook.id)  # and the store forgets it once delivered
        pending = [r for r in world.log(failing.webhook.id) if r.type == "subject.erased"]
        assert pending and "erin" in world.deps.store.get_message(world.tenant_id, failing.webhook.id,
                                                                   pending[0].message_id).body
        later = [e for e in down.requests[2:] if b"erin" in e.body]
        assert [json.loads(e.body)["type"] for e in later] == ["subject.erased"] * len(later)
        assert world.deps.store.erased_subject(world.tenant_id, world.deps.store.get_message(
            world.tenant_id, failing.webhook.id, pending[0].message_id).subject_ref) is None


# --- the running worker: what it keeps in memory follows the store ---------------------------------------

@contextlib.contextmanager
def running(worker: Worker):
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), name="test-worker")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=60)
        assert not thread.is_alive()


def test_a_running_worker_sends_what_changed_behind_its_back_as_the_store_has_it(world):
    """Between rounds the worker keeps what it owes in memory: an erasure's redaction, a test
    message and a retry asked for through the API reach it through the store's marks."""
    with receiving() as receiver:
        receiver.rule = lambda r: 503 if b'"dora"' in r.body else None  # dora's messages fail while named
        created = world.hook(receiver.url)
        worker = world.worker()
        with running(worker):
            world.decide("dora", push=True)
            receiver.wait_for(1, what=lambda r: b'"dora"' in r.body)  # failed; its retry waits in memory
            consents.erase(world.deps, world.tenant_id, "dora", None)
            webhooks.send_test(world.deps, world.tenant_id, created.webhook.id)
            receiver.wait_for(1, what=lambda r: r.json["type"] == "webhook.test")
            world.clock.advance(minutes=5)  # the retry falls due
            got = receiver.wait_for(1, what=lambda r: r.json["type"] == "consent.changed" and b'"dora"' not in r.body)
        retried = [r.json for r in got if r.json["type"] == "consent.changed" and b'"dora"' not in r.body]
        assert retried[0]["data"]["subject_id"] is None and retried[0]["data"]["event"]["subject_id"] is None
        assert [r.json["data"]["subject_id"] for r in got if r.json["type"] == "subject.erased"] in ([], ["dora"])


def test_a_running_worker_gives_a_completed_send_s_place_to_the_next_message_before_recording(world, monkeypatch):
    """Within a round's gathering time a fast receiver gets more than IN_FLIGHT_PER_ENDPOINT
    messages, never more than that at once; a subject's next message still waits for the outcome
    of its previous one, recorded at the next round."""
    monkeypatch.setattr(delivery, "MIN_ROUND_S", 60.0)  # one round's gathering outlasts the test
    recorded = []
    record = world.deps.store.record_outcomes
    monkeypatch.setattr(world.deps.store, "record_outcomes", lambda outcomes: (recorded.append(len(outcomes)),
                                                                                record(outcomes))[1])
    lock = threading.Lock()
    sent: list[tuple[str, str]] = []
    sending, most = 0, 0
    all_sent = threading.Event()

    def send(url, headers, body):
        nonlocal sending, most
        with lock:
            sending += 1
            most = max(most, sending)
        data = json.loads(body)["data"]
        with lock:
            sending -= 1
            sent.append((data["subject_id"], data["event"]["action"]))
            if len(sent) == 41:
                all_sent.set()
        return sender.Answer(204, 1)

    world.hook("http://127.0.0.1:9/hook")
    world.decide("carol", push=True)
    world.decide("carol", push=False)
    for n in range(40):
        world.decide(f"s{n}", push=True)
    with running(world.worker(send=send)):
        assert all_sent.wait(30)
        assert recorded == []  # all 41 within the first round, none of their outcomes recorded yet
    assert most <= IN_FLIGHT_PER_ENDPOINT
    assert [a for s, a in sent if s == "carol"] == ["grant"]  # her withdrawal waits for the grant's outcome
    assert sum(recorded) == 41  # recorded when the worker stopped
    world.worker(send=send).run_once()
    assert [a for s, a in sent if s == "carol"] == ["grant", "withdraw"]
