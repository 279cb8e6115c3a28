"""The change feed and the webhook tables as every adapter stores them (store/delivery.py), and
what mongomock can show of MongoDB's feed positions: gaps, recorded gaps, a young gap that ends
a page."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

from consent_api.domain.clock import parse_ts
from consent_api.domain.webhooks import message_body, redact
from consent_api.store.delivery import Message, Outcome, Owed, Secret, Webhook, scheduled
from consent_api.store.mongo.delivery import FEED_GAP_GRACE
from tests.store.drafts import append, draft

T0 = parse_ts("2026-03-01T08:00:00Z")


def feed(store, tenant_id: str, after: int = 0, limit: int = 500):
    page = store.feed_page(tenant_id, after, limit)
    return [(e["subject_id"], e["seq"], e["purpose"]) for e in page.events], page


def test_the_feed_is_every_event_of_the_tenant_once_in_commit_order(store):
    append(store, "t1", "a", draft("push"), draft("sms"))
    append(store, "t2", "x", draft("push", tenant_id="t2"))
    append(store, "t1", "b", draft("push"))
    append(store, "t1", "a", draft("location"))
    events, page = feed(store, "t1")
    assert events == [("a", 1, "push"), ("a", 2, "sms"), ("b", 1, "push"), ("a", 3, "location")]
    assert page.positions == sorted(page.positions) and len(set(page.positions)) == 4
    assert page.end == page.positions[-1] <= store.feed_head("t1")
    followed, after = [], 0
    while True:  # page by page, one event at a time
        one, page = feed(store, "t1", after, 1)
        if not one:
            break
        followed += one
        after = page.end
    assert followed == events
    assert feed(store, "t1", after)[1].end == after  # nothing new: the end stays
    assert feed(store, "t2")[0] == [("x", 1, "push")]


def test_an_erased_subject_s_events_show_without_its_id(store):
    append(store, "t1", "a", draft("push"))
    append(store, "t1", "a", draft(None, action="erase"), erase=True)
    assert [e[0] for e in feed(store, "t1")[0]] == [None, None]


def test_a_new_consumer_starts_after_everything_committed(store):
    append(store, "t1", "a", draft("push"))
    head = store.feed_head("t1")
    assert feed(store, "t1", head)[0] == []
    append(store, "t1", "b", draft("push"))
    assert feed(store, "t1", head)[0] == [("b", 1, "push")]


def webhook(tenant_id: str = "t1", cursor: int = 0) -> Webhook:
    return Webhook("wh_1", tenant_id, "https://example.com/h", None, None, None, "enabled",
                   (Secret("whsec_x", T0),), T0, T0, cursor)


def message(n: int, **kw) -> Message:
    return Message(**{"tenant_id": "t1", "webhook_id": "wh_1", "id": f"msg_{n}", "type": "consent.changed",
                      "body": "{}", "order": n, "created_at": T0, "event_at": T0, "subject_ref": "r",
                      "next_attempt_at": T0, **kw})


def test_enqueue_moves_the_cursor_with_the_messages_and_records_each_once(store):
    store.add_webhook(webhook())
    assert store.enqueue("t1", "wh_1", [message(1), message(2)], advance=(0, 2))
    assert not store.enqueue("t1", "wh_1", [message(3)], advance=(0, 3))  # the cursor is at 2 now
    assert store.enqueue("t1", "wh_1", [message(2), message(3)], advance=(2, 3))  # 2 again: a no-op
    assert [m.id for m in store.pending_messages("t1", "wh_1", 10)] == ["msg_1", "msg_2", "msg_3"]
    assert store.get_webhook("t1", "wh_1").cursor == 3
    rows = store.list_attempts("t1", "wh_1", None, None, 10)
    assert sorted((r.message_id, r.attempt, r.status) for r in rows) == [
        ("msg_1", 1, "pending"), ("msg_2", 1, "pending"), ("msg_3", 1, "pending")]
    assert store.get_webhook("t2", "wh_1") is None and store.pending_messages("t2", "wh_1", 10) == []


def test_a_replay_owes_a_delivered_message_again_with_a_new_attempt_row(store):
    store.add_webhook(webhook())
    store.enqueue("t1", "wh_1", [message(1)])
    from consent_api.store.delivery import Outcome, scheduled

    done = replace(message(1), status="delivered", attempts=1, next_attempt_at=None, first_attempt_at=T0)
    store.record_outcomes([Outcome(replace(scheduled(message(1)), status="delivered"), done)])
    assert store.pending_messages("t1", "wh_1", 10) == []
    assert store.delivery_counts().by_status == {"delivered": 1}
    store.enqueue("t1", "wh_1", [message(1)])  # derived again (a crash): still delivered
    assert store.pending_messages("t1", "wh_1", 10) == []
    store.enqueue("t1", "wh_1", [replace(message(1), next_attempt_at=T0 + timedelta(hours=1))], resend_upto=1)
    [again] = store.pending_messages("t1", "wh_1", 10)
    assert (again.attempts, again.next_attempt_at) == (1, T0 + timedelta(hours=1))
    assert sorted((r.attempt, r.status) for r in store.list_attempts("t1", "wh_1", None, None, 10)) == [
        (1, "delivered"), (2, "pending")]


def test_one_lease_holder_at_a_time(store):
    assert store.acquire_lease("w", "a", T0, T0 + timedelta(seconds=10))
    assert not store.acquire_lease("w", "b", T0 + timedelta(seconds=5), T0 + timedelta(seconds=15))
    assert store.acquire_lease("w", "a", T0 + timedelta(seconds=5), T0 + timedelta(seconds=15))  # renewed
    assert store.acquire_lease("w", "b", T0 + timedelta(seconds=15), T0 + timedelta(seconds=25))  # expired
    store.release_lease("w", "a")  # not a's any more: nothing happens
    assert not store.acquire_lease("w", "a", T0 + timedelta(seconds=16), T0 + timedelta(seconds=26))
    store.release_lease("w", "b")
    assert store.acquire_lease("w", "a", T0 + timedelta(seconds=16), T0 + timedelta(seconds=26))


def test_erasure_notes_are_kept_then_forgotten(store):
    store.note_erasure("t1", "ref1", "alice", T0)
    assert store.erased_subject("t1", "ref1") == "alice" and store.erased_subject("t2", "ref1") is None
    assert store.forget_erasures(T0 + timedelta(seconds=1)) == 1
    assert store.erased_subject("t1", "ref1") is None


# --- MongoDB: positions taken before inserting ------------------------------------------------------

def test_a_young_gap_ends_the_page_until_it_is_filled_or_old(mongo_store):
    append(mongo_store, "t1", "a", draft("push"))
    taken, _ = mongo_store._take_positions("t1", 1)  # a writer took a position and has not inserted yet
    append(mongo_store, "t1", "b", draft("push"))
    events, page = feed(mongo_store, "t1")
    assert events == [("a", 1, "push")] and page.end == taken - 1
    real_clock = mongo_store.feed_clock
    mongo_store.feed_clock = lambda: real_clock() + FEED_GAP_GRACE  # the writer died long ago
    events, page = feed(mongo_store, "t1")
    assert events == [("a", 1, "push"), ("b", 1, "push")] and page.end == taken + 1


def test_a_recorded_gap_is_passed_at_once(mongo_store):
    append(mongo_store, "t1", "a", draft("push"))
    taken, _ = mongo_store._take_positions("t1", 2)
    mongo_store._unused_positions("t1", [taken, taken + 1])  # a writer lost its head and said so
    append(mongo_store, "t1", "b", draft("push"))
    assert [e[0] for e in feed(mongo_store, "t1")[0]] == ["a", "b"]


def test_an_append_that_loses_the_head_records_its_unused_positions(mongo_store):
    append(mongo_store, "t1", "a", draft("push"))
    record = mongo_store.get_subject("t1", "a")
    from consent_api.domain.ledger import seal

    stale = seal([draft("sms")], record)  # sealed on seq 1, as a slower writer would
    append(mongo_store, "t1", "a", draft("location"))  # takes seq 2 first
    assert mongo_store._insert_events(stale) == 0
    gaps = list(mongo_store.db["feed_gaps"].find({"tenant_id": "t1"}, {"_id": 0, "n": 1}))
    assert len(gaps) == 1
    assert [e[2] for e in feed(mongo_store, "t1")[0]] == ["push", "location"]


def test_feed_bookkeeping_never_shows_in_the_ledger(mongo_store):
    append(mongo_store, "t1", "a", draft("push"))
    ref = mongo_store.get_subject("t1", "a").subject_ref
    [event] = mongo_store.subject_events("t1", ref)
    assert "feed_seq" not in event and "fed_at" not in event
    from consent_api.store.port import ExportFilter

    [exported] = list(mongo_store.export_events("t1", ExportFilter()))
    assert "feed_seq" not in exported and "_id" not in exported


# --- erasure: stored messages redacted ----------------------------------------------------------------

def said(type_: str, subject: str | None, details: str | None = None) -> str:
    data: dict = {"tenant_id": "t1", "subject_id": subject}
    if type_ == "consent.changed":
        data["event"] = {"subject_id": subject, "purpose": "push"}
    if type_.startswith("request."):
        data["request"] = {"id": "req_1", "subject_id": subject, "details": details, "note": details,
                           "reason": None, "status": "open"}
    return message_body(type_, "2026-03-01T08:00:00Z", data)


def test_an_erasure_redacts_the_subject_s_messages_except_a_pending_subject_erased(store):
    ref = append(store, "t1", "alice", draft("push")).record.subject_ref
    other = append(store, "t1", "bob", draft("push")).record.subject_ref
    ref2 = append(store, "t2", "alice", draft("push", tenant_id="t2")).record.subject_ref
    store.add_webhook(webhook())
    store.add_webhook(webhook("t2"))
    sent = message(1, subject_ref=ref, body=said("consent.changed", "alice"))
    store.enqueue("t1", "wh_1", [
        sent, message(2, subject_ref=ref, body=said("consent.changed", "alice")),
        message(3, subject_ref=ref, type="request.created", body=said("request.created", "alice", "my orders")),
        message(4, subject_ref=ref, type="subject.erased", body=said("subject.erased", "alice")),
        message(5, subject_ref=other, body=said("consent.changed", "bob"))])
    store.enqueue("t2", "wh_1", [message(6, tenant_id="t2", subject_ref=ref2, body=said("consent.changed", "alice"))])
    done = replace(sent, status="delivered", attempts=1, next_attempt_at=None, first_attempt_at=T0)
    store.record_outcomes([Outcome(replace(scheduled(sent), status="delivered"), done)])
    marks = store.delivery_marks()

    append(store, "t1", "alice", draft(None, action="erase"), erase=True)
    assert store.redact_messages("t1", ref) == 3

    def body(tenant_id: str, n: int) -> dict:
        return json.loads(store.get_message(tenant_id, "wh_1", f"msg_{n}").body)

    for n in (1, 2):
        assert body("t1", n)["data"] == {"tenant_id": "t1", "subject_id": None,
                                         "event": {"subject_id": None, "purpose": "push"}}
    assert body("t1", 3)["data"]["request"] == {"id": "req_1", "subject_id": None, "details": None, "note": None,
                                                "reason": None, "status": "open"}
    assert body("t1", 4)["data"]["subject_id"] == "alice"  # what subject.erased exists to say, until delivered
    assert body("t1", 5)["data"]["subject_id"] == "bob" and body("t2", 6)["data"]["subject_id"] == "alice"
    assert store.get_message("t1", "wh_1", "msg_1").status == "delivered"
    assert store.delivery_marks()[1] > marks[1]  # the worker reads what it owes again

    # an outcome recorded after the erasure keeps the stored body, whatever the sender had in hand
    pending = message(2, subject_ref=ref, body=said("consent.changed", "alice"))
    retry = replace(pending, attempts=1, next_attempt_at=T0 + timedelta(seconds=5), first_attempt_at=T0)
    store.record_outcomes([Outcome(replace(scheduled(pending), status="failed", attempt=1), retry)])
    assert body("t1", 2)["data"]["subject_id"] is None
    # subject.erased, once delivered, keeps the id no longer
    erased = store.get_message("t1", "wh_1", "msg_4")
    told = replace(erased, status="delivered", attempts=1, next_attempt_at=None, first_attempt_at=T0,
                   body=redact(erased.body))
    store.record_outcomes([Outcome(replace(scheduled(erased), status="delivered"), told)])
    assert body("t1", 4)["data"]["subject_id"] is None
    assert not [a for a in store.list_attempts("t1", "wh_1", None, None, 50) if "alice" in repr(a)]


def test_a_message_recorded_after_its_subject_was_erased_is_stored_redacted(store):
    ref = append(store, "t1", "carol", draft("push")).record.subject_ref
    store.add_webhook(webhook())
    append(store, "t1", "carol", draft(None, action="erase"), erase=True)
    made = [message(1, subject_ref=ref, body=said("consent.changed", "carol")),
            message(2, subject_ref=ref, type="subject.erased", body=said("subject.erased", "carol"))]
    assert store.enqueue_many([Owed("t1", "wh_1", made, advance=(0, 2))]) == [True]
    assert json.loads(store.get_message("t1", "wh_1", "msg_1").body)["data"]["subject_id"] is None
    assert json.loads(store.get_message("t1", "wh_1", "msg_2").body)["data"]["subject_id"] == "carol"
