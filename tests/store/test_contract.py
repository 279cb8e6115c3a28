"""The one storage contract: every adapter in conftest.ALL_STORES passes each test here."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import pytest

from consent_api.domain.ledger import ZERO_HASH, seal, verify_chain
from consent_api.domain.model import Action, PurposeRecord, SubjectRecord
from consent_api.domain.projection import project
from consent_api.errors import Conflict
from consent_api.store.port import Answer, Chain, ExportCursor, ExportFilter
from tests.store.drafts import (
    api_key,
    append,
    at,
    draft,
    fresh,
    plan_of,
    policy,
    purpose,
    subject_token_key,
    tenant,
    ts,
    vendor,
)


def exported(store, tenant_id="t1", **filters) -> list[dict]:
    return list(store.export_events(tenant_id, ExportFilter(**filters)))


def event_ids(events) -> list[str]:
    return [e["event_id"] for e in events]


# --- tenants and credentials -----------------------------------------------------------------

def test_tenants_are_created_read_listed_and_unique(store):
    store.create_tenant(tenant("t2", "Beta"))
    store.create_tenant(tenant("t1", "Acme"))

    assert store.get_tenant("t1") == tenant("t1", "Acme")
    assert store.get_tenant("nope") is None
    assert [t.id for t in store.iter_tenants()] == ["t1", "t2"]
    with pytest.raises(Conflict):
        store.create_tenant(tenant("t1", "Again"))


def test_api_keys_are_found_by_hash_and_by_tenant_and_id(store):
    key = api_key("k1", scopes=("admin",), origins=("https://shop.example",))
    store.add_api_key(key)

    assert store.find_api_key(key.key_hash) == key
    assert store.find_api_key("unknown-hash") is None
    assert store.get_api_key("t1", "k1") == key
    assert store.get_api_key("t1", "k2") is None
    with pytest.raises(Conflict):
        store.add_api_key(api_key("k2", key_hash=key.key_hash))


def test_revoking_a_key_keeps_the_first_revocation_time(store):
    store.add_api_key(api_key("k1"))

    first = store.revoke_api_key("t1", "k1", at(5))
    again = store.revoke_api_key("t1", "k1", at(9))

    assert first.revoked_at == at(5)
    assert again.revoked_at == at(5)
    assert store.find_api_key(first.key_hash).revoked_at == at(5)
    assert store.revoke_api_key("t1", "missing", at(5)) is None


def test_api_keys_list_in_id_order_page_by_page(store):
    for key_id in ("k3", "k1", "k5", "k2", "k4"):
        store.add_api_key(api_key(key_id))

    first = store.list_api_keys("t1", None, 2)
    second = store.list_api_keys("t1", first[-1].id, 2)
    last = store.list_api_keys("t1", second[-1].id, 2)

    assert [k.id for k in first + second + last] == ["k1", "k2", "k3", "k4", "k5"]
    assert store.list_api_keys("t1", "k5", 2) == []


def test_subject_token_keys_are_found_listed_oldest_first_and_revoked(store):
    store.add_subject_token_key(subject_token_key("kid-b", minutes=2))
    store.add_subject_token_key(subject_token_key("kid-a", minutes=1))

    assert store.find_subject_token_key("kid-a") == subject_token_key("kid-a", minutes=1)
    assert store.find_subject_token_key("kid-x") is None
    assert [k.kid for k in store.list_subject_token_keys("t1")] == ["kid-a", "kid-b"]

    revoked = store.revoke_subject_token_key("t1", "kid-b", at(7))
    assert revoked.revoked_at == at(7)
    assert store.revoke_subject_token_key("t1", "kid-b", at(8)).revoked_at == at(7)
    assert store.find_subject_token_key("kid-b").revoked_at == at(7)
    assert store.revoke_subject_token_key("t1", "kid-x", at(7)) is None
    with pytest.raises(Conflict):
        store.add_subject_token_key(subject_token_key("kid-a"))


# --- catalog -----------------------------------------------------------------------------------

def test_put_purpose_says_whether_it_created_or_replaced(store):
    assert store.put_purpose("t1", purpose("push")) is True
    changed = purpose("push", title={"en": "Personalised push"}, archived=True, validity_days=365.5)
    assert store.put_purpose("t1", changed) is False

    assert store.get_purpose("t1", "push") == changed
    assert store.get_purpose("t1", "sms") is None


def test_purposes_list_in_key_order_archived_included(store):
    for key in ("sms", "location", "push"):
        store.put_purpose("t1", purpose(key, archived=key == "sms", vendors=("umeng",),
                                        consent_mode=("ad_storage",), sensitive=key == "location"))

    listed = store.list_purposes("t1")

    assert [p.key for p in listed] == ["location", "push", "sms"]
    assert listed[0].sensitive and listed[2].archived
    assert listed[1] == purpose("push", vendors=("umeng",), consent_mode=("ad_storage",))


def test_policy_versions_are_published_once(store):
    store.add_policy("t1", policy("2026-01"))
    store.add_policy("t1", policy("2026-02", material=True, effective_at=at(60), published_at=at(1)))

    with pytest.raises(Conflict):
        store.add_policy("t1", policy("2026-01", url="https://example.com/other"))
    assert store.list_policies("t1") == [
        policy("2026-01"),
        policy("2026-02", material=True, effective_at=at(60), published_at=at(1)),
    ]


def test_put_vendor_says_whether_it_created_or_replaced(store):
    assert store.put_vendor("t1", vendor("umeng")) is True
    assert store.put_vendor("t1", vendor("jpush", name="JPush")) is True
    assert store.put_vendor("t1", vendor("umeng", scenario="statistics")) is False

    assert store.list_vendors("t1") == [vendor("jpush", name="JPush"), vendor("umeng", scenario="statistics")]


# --- append --------------------------------------------------------------------------------------

def test_append_numbers_events_from_one_without_gaps(store):
    first = append(store, "t1", "u1", draft("push"), draft("sms", "deny"))
    second = append(store, "t1", "u1", draft("push", "withdraw", minutes=1))

    events = store.subject_events("t1", first.record.subject_ref)
    assert [e["seq"] for e in events] == [1, 2, 3]
    assert [e["seq"] for e in first.events + second.events] == [1, 2, 3]
    assert event_ids(events) == event_ids(first.events + second.events)
    assert second.record.subject_ref == first.record.subject_ref
    assert second.record.seq == 3 and second.record.head_hash == events[-1]["hash"]


def test_appended_events_form_a_chain_an_auditor_can_verify(store):
    append(store, "t1", "u1", draft("push"))
    done = append(store, "t1", "u1", draft("push", "withdraw", minutes=1), draft("location", minutes=1))

    events = store.subject_events("t1", done.record.subject_ref)
    assert verify_chain(events) == (3, None)
    assert events[0]["prev_hash"] == ZERO_HASH
    assert "subject_id" not in events[0]
    assert events[0]["source"]["collection_point"] == "设置页"


def test_stored_events_are_exactly_the_sealed_events(store):
    done = append(store, "t1", "u1", draft("push", age_band="adult", os_permission="granted",
                                           separate=True, evidence={"gpc": True, "ip_prefix": None}))

    [stored] = store.subject_events("t1", done.record.subject_ref)
    assert stored == {k: v for k, v in done.events[0].items() if k != "subject_id"}


def test_plan_sees_the_current_record(store):
    seen = []

    def plan(record):
        seen.append(record)
        return [draft("push", minutes=len(seen))]

    store.append("t1", "u1", plan)
    store.append("t1", "u1", plan)

    assert seen[0].seq == 0 and seen[0].purposes == {} and seen[0].subject_ref.startswith("sr_")
    assert seen[1].seq == 1 and seen[1].subject_ref == seen[0].subject_ref
    assert seen[1].purposes["push"].action == Action.GRANT


def test_a_plan_that_raises_writes_nothing(store):
    def refuse(record):
        raise ValueError("rule broken")

    with pytest.raises(ValueError):
        store.append("t1", "new", refuse)
    before = append(store, "t1", "u1", draft("push"))
    with pytest.raises(ValueError):
        store.append("t1", "u1", refuse)

    assert store.get_subject("t1", "new") is None
    assert store.get_subject("t1", "u1") == before.record
    assert len(exported(store)) == 1


def test_an_empty_plan_writes_nothing(store):
    nothing = store.append("t1", "new", plan_of())
    before = append(store, "t1", "u1", draft("push"))
    unchanged = store.append("t1", "u1", plan_of())

    assert nothing.events == [] and nothing.record.seq == 0
    assert store.get_subject("t1", "new") is None
    assert unchanged.events == [] and unchanged.record == before.record
    assert store.get_subject("t1", "u1") == before.record
    assert [s.subject_id for s in store.list_subjects("t1", None, 10)] == ["u1"]


def test_drafts_of_another_tenant_are_refused(store):
    with pytest.raises(ValueError):
        append(store, "t1", "u1", draft("push", tenant_id="t2"))
    with pytest.raises(ValueError):
        append(store, "t1", "u1", draft("push", tenant_id=None))

    assert store.get_subject("t1", "u1") is None
    assert exported(store, "t1") == [] and exported(store, "t2") == []


def test_the_record_is_the_projection_of_the_stored_events(store):
    append(store, "t1", "u1", draft("push"), draft("sms", "deny"), draft("location", "prompt"))
    append(store, "t1", "u1", draft("push", "withdraw", minutes=1, age_band="under_14"),
           draft("location", "grant", minutes=1, os_permission="granted"))
    done = append(store, "t1", "u1", draft("sms", "prompt", minutes=2))

    record = store.get_subject("t1", "u1")
    events = store.subject_events("t1", record.subject_ref)
    assert record == project("u1", record.subject_ref, events) == done.record
    assert record.age_band == "under_14"
    assert record.purposes["sms"] == PurposeRecord(
        action="deny", decided_at=ts(0), policy_version="2026-01",
        event_id=events[1]["event_id"], prompted_at=ts(2))


def test_get_subjects_returns_the_records_that_exist(store):
    a = append(store, "t1", "a", draft("push")).record
    b = append(store, "t1", "b", draft("sms")).record

    assert store.get_subjects("t1", ["b", "missing", "a", "b"]) == {"a": a, "b": b}
    assert store.get_subjects("t1", []) == {}
    assert store.get_subjects("t1", [f"x{i}" for i in range(1200)] + ["b"]) == {"b": b}  # past one batch


def test_subject_events_page_by_seq(store):
    ref = append(store, "t1", "u1", *[draft(f"p{i}") for i in range(5)]).record.subject_ref

    assert [e["seq"] for e in store.subject_events("t1", ref, after_seq=0, limit=2)] == [1, 2]
    assert [e["seq"] for e in store.subject_events("t1", ref, after_seq=2, limit=2)] == [3, 4]
    assert [e["seq"] for e in store.subject_events("t1", ref, after_seq=4, limit=2)] == [5]
    assert [e["seq"] for e in store.subject_events("t1", ref, after_seq=3)] == [4, 5]
    assert store.subject_events("t1", ref, after_seq=5) == []
    assert store.subject_events("t1", "sr_unknown") == []


# --- erasure -------------------------------------------------------------------------------------

def test_erasure_removes_the_subject_and_keeps_the_proof(store):
    old = append(store, "t1", "u1", draft("push"), draft("sms")).record
    store.claim_idempotency_key("t1", "key-a", "idem-1", "hash-1", fresh())
    store.complete_idempotency_key("t1", "key-a", "idem-1", 201, "{}", old.subject_ref)
    store.claim_idempotency_key("t1", "key-a", "idem-other", "hash-2", fresh())
    store.complete_idempotency_key("t1", "key-a", "idem-other", 201, "{}", "sr_someone_else")

    erased = append(store, "t1", "u1", draft(None, "erase", minutes=1), erase=True)

    assert [e["action"] for e in erased.events] == ["erase"] and erased.events[0]["seq"] == 3
    assert store.get_subject("t1", "u1") is None
    assert store.get_subjects("t1", ["u1"]) == {}
    assert store.list_subjects("t1", None, 10) == []
    assert store.allowed_candidates("t1", "push", None, 10) == []
    events = store.subject_events("t1", old.subject_ref)
    assert [e["seq"] for e in events] == [1, 2, 3]
    assert verify_chain(events) == (3, None)
    assert store.claim_idempotency_key("t1", "key-a", "idem-1", "hash-3", fresh(2)) is None
    assert store.claim_idempotency_key("t1", "key-a", "idem-other", "hash-3", fresh(2)) is not None


def test_erasure_forgets_every_idempotency_record_about_the_subject(store):
    """Claims made for requests about the subject go too, finished or not, with or without a
    subject_ref: their scope (a subject token's) or answer (one that wrote nothing) holds the id."""
    append(store, "t1", "u1", draft("push"))
    store.claim_idempotency_key("t1", "stk_1:u1", "running", "h", fresh(), subject_id="u1")
    store.claim_idempotency_key("t1", "key-a", "wrote-nothing", "h", fresh(), subject_id="u1")
    store.complete_idempotency_key("t1", "key-a", "wrote-nothing", 200, '{"state": {"subject_id": "u1"}}', None)
    store.claim_idempotency_key("t1", "key-a", "about-u2", "h", fresh(), subject_id="u2")
    store.claim_idempotency_key("t2", "key-b", "other-tenant", "h", fresh(), subject_id="u1")

    append(store, "t1", "u1", draft(None, "erase", minutes=1), erase=True)

    assert store.claim_idempotency_key("t1", "stk_1:u1", "running", "h2", fresh(1)) is None
    assert store.claim_idempotency_key("t1", "key-a", "wrote-nothing", "h2", fresh(1)) is None
    assert store.claim_idempotency_key("t1", "key-a", "about-u2", "h2", fresh(1)) is not None
    assert store.claim_idempotency_key("t2", "key-b", "other-tenant", "h2", fresh(1)) is not None


def test_a_returning_subject_gets_a_new_ref_and_a_new_chain(store):
    old = append(store, "t1", "u1", draft("push")).record
    append(store, "t1", "u1", draft(None, "erase", minutes=1), erase=True)

    seen = []
    back = store.append("t1", "u1", lambda record: seen.append(record) or [draft("sms", minutes=2)])

    assert seen[0].seq == 0 and seen[0].purposes == {}
    assert back.record.subject_ref != old.subject_ref
    assert [e["seq"] for e in back.events] == [1] and back.events[0]["prev_hash"] == ZERO_HASH
    assert store.get_subject("t1", "u1") == back.record
    assert [e["seq"] for e in store.subject_events("t1", old.subject_ref)] == [1, 2]


# --- audit export --------------------------------------------------------------------------------

@pytest.fixture
def ledger(store):
    """Two subjects whose events interleave in time, with ties on recorded_at (and bob's
    written first, so that insertion order is not the export order)."""
    b = append(store, "t1", "bob", draft("push", minutes=0, event_id="ev_b1"),
               draft("push", "withdraw", minutes=1, event_id="ev_b2"))
    a = append(store, "t1", "alice", draft("push", minutes=0, event_id="ev_a1"),
               draft("sms", "deny", minutes=0, event_id="ev_a2"))
    c = append(store, "t1", "alice", draft("push", "withdraw", minutes=2, event_id="ev_a3"))
    return {"alice": c.record.subject_ref, "bob": b.record.subject_ref,
            "events": a.events + b.events + c.events}


def test_export_orders_by_recorded_at_then_seq_then_event_id(store, ledger):
    events = exported(store)

    # ev_a1 and ev_b1 tie on (recorded_at, seq 1): event_id decides
    assert event_ids(events) == ["ev_a1", "ev_b1", "ev_a2", "ev_b2", "ev_a3"]
    assert events == sorted(events, key=lambda e: (e["recorded_at"], e["seq"], e["event_id"]))
    assert [e["subject_id"] for e in events] == ["alice", "bob", "alice", "bob", "alice"]
    assert events[0] == {**ledger["events"][0], "subject_id": "alice"}


def test_export_is_a_stream(store, ledger):
    stream = store.export_events("t1", ExportFilter())

    assert isinstance(stream, Iterator)
    assert next(stream)["event_id"] == "ev_a1"


def test_export_since_is_inclusive_and_until_exclusive(store, ledger):
    assert event_ids(exported(store, since=ts(1))) == ["ev_b2", "ev_a3"]
    assert event_ids(exported(store, until=ts(1))) == ["ev_a1", "ev_b1", "ev_a2"]
    assert event_ids(exported(store, since=ts(1), until=ts(2))) == ["ev_b2"]
    assert exported(store, since=ts(3)) == []


def test_export_filters_by_purpose_and_subject_ref(store, ledger):
    assert event_ids(exported(store, purpose="push")) == ["ev_a1", "ev_b1", "ev_b2", "ev_a3"]
    assert event_ids(exported(store, purpose="sms")) == ["ev_a2"]
    assert event_ids(exported(store, subject_ref=ledger["bob"])) == ["ev_b1", "ev_b2"]
    assert event_ids(exported(store, subject_ref=ledger["alice"], purpose="push", since=ts(1))) == ["ev_a3"]


def test_export_resumes_after_a_cursor(store, ledger):
    def after(event):
        return ExportCursor(event["recorded_at"], event["seq"], event["event_id"])

    events = exported(store)
    for i, event in enumerate(events):
        assert exported(store, after=after(event)) == events[i + 1:]
    assert event_ids(exported(store, after=ExportCursor(ts(0), 1, "ev_a1"), purpose="push")) == [
        "ev_b1", "ev_b2", "ev_a3"]


def test_export_shows_no_subject_id_once_erased(store, ledger):
    append(store, "t1", "alice", draft(None, "erase", minutes=3, event_id="ev_a4"), erase=True)
    append(store, "t1", "alice", draft("push", minutes=4, event_id="ev_new"))

    by_id = {e["event_id"]: e for e in exported(store)}
    assert [by_id[i]["subject_id"] for i in ("ev_a1", "ev_a2", "ev_a3", "ev_a4")] == [None] * 4
    assert by_id["ev_b1"]["subject_id"] == "bob"
    assert by_id["ev_new"]["subject_id"] == "alice"
    assert by_id["ev_new"]["subject_ref"] != ledger["alice"]


# --- subjects: audiences and lists ----------------------------------------------------------------

def test_allowed_candidates_follow_the_last_decision(store):
    append(store, "t1", "u2", draft("push"))
    append(store, "t1", "u1", draft("push"))
    append(store, "t1", "u3", draft("push", "deny"), draft("sms"))

    def candidates():
        return [r.subject_id for r in store.allowed_candidates("t1", "push", None, 10)]

    assert candidates() == ["u1", "u2"]
    append(store, "t1", "u1", draft("push", "withdraw", minutes=1))
    assert candidates() == ["u2"]
    append(store, "t1", "u1", draft("push", "prompt", minutes=2))
    assert candidates() == ["u2"]
    append(store, "t1", "u1", draft("push", "grant", minutes=3))
    assert candidates() == ["u1", "u2"]
    append(store, "t1", "u2", draft("sms", "deny", minutes=3), draft("push", "prompt", minutes=3))
    assert candidates() == ["u1", "u2"]
    assert store.allowed_candidates("t1", "push", None, 10)[0] == store.get_subject("t1", "u1")


def test_allowed_candidates_page_by_subject_id(store):
    for sid in ("u4", "u1", "u3", "u2", "u5"):
        append(store, "t1", sid, draft("push", "deny" if sid == "u3" else "grant"))

    first = store.allowed_candidates("t1", "push", None, 2)
    second = store.allowed_candidates("t1", "push", first[-1].subject_id, 2)
    last = store.allowed_candidates("t1", "push", second[-1].subject_id, 2)

    pages = [[r.subject_id for r in page] for page in (first, second, last)]
    assert pages == [["u1", "u2"], ["u4", "u5"], []]


def test_list_subjects_pages_by_subject_id(store):
    for sid in ("c", "a", "e", "b", "d"):
        append(store, "t1", sid, draft("push"))

    first = store.list_subjects("t1", None, 2)
    second = store.list_subjects("t1", first[-1].subject_id, 2)
    last = store.list_subjects("t1", second[-1].subject_id, 2)

    pages = [[r.subject_id for r in page] for page in (first, second, last)]
    assert pages == [["a", "b"], ["c", "d"], ["e"]]
    assert [r.subject_id for r in store.iter_subjects("t1")] == ["a", "b", "c", "d", "e"]
    assert first[0] == store.get_subject("t1", "a")


def test_replace_record_overwrites_the_state(store):
    record = append(store, "t1", "u1", draft("push"), draft("sms")).record
    rebuilt = replace(record, age_band="adult", purposes={
        **record.purposes, "push": replace(record.purposes["push"], action="withdraw")})

    store.replace_record("t1", rebuilt)

    assert store.get_subject("t1", "u1") == rebuilt
    assert store.allowed_candidates("t1", "push", None, 10) == []
    assert [r.subject_id for r in store.allowed_candidates("t1", "sms", None, 10)] == ["u1"]
    store.replace_record("t1", record)
    assert store.get_subject("t1", "u1") == record
    assert [r.subject_id for r in store.allowed_candidates("t1", "push", None, 10)] == ["u1"]


def test_replace_record_drops_audiences_of_purposes_the_record_no_longer_has(store):
    record = append(store, "t1", "u1", draft("push"), draft("sms")).record

    store.replace_record("t1", replace(record, purposes={"sms": record.purposes["sms"]}))

    assert store.allowed_candidates("t1", "push", None, 10) == []
    assert [r.subject_id for r in store.allowed_candidates("t1", "sms", None, 10)] == ["u1"]


# --- whole chains (migration) ----------------------------------------------------------------------

def sealed_chain(subject_ref: str, *drafts: dict, tenant_id: str = "t1") -> list[dict]:
    """Events as another store holds them: sealed, without subject_id."""
    events = seal(drafts, SubjectRecord(subject_id="ignored", subject_ref=subject_ref))
    return [{k: v for k, v in e.items() if k != "subject_id"} for e in events]


def test_chains_list_every_head_erased_ones_included_in_ref_order(store):
    one = append(store, "t1", "u1", draft("push"), draft("sms"), draft("push", "withdraw")).record
    two = append(store, "t1", "u2", draft("push")).record
    gone = append(store, "t1", "u3", draft("push")).record
    append(store, "t1", "u3", draft(None, "erase", minutes=1), erase=True)
    append(store, "t2", "u1", draft("push", tenant_id="t2"))

    chains = store.list_chains("t1", None, 10)

    expected = sorted([
        Chain(one.subject_ref, "u1", 3, 3, one.head_hash),
        Chain(two.subject_ref, "u2", 1, 1, two.head_hash),
        Chain(gone.subject_ref, None, 2, 2, store.subject_events("t1", gone.subject_ref)[-1]["hash"]),
    ], key=lambda c: c.subject_ref)
    assert chains == expected
    assert store.list_chains("t1", None, 2) == expected[:2]
    assert store.list_chains("t1", expected[1].subject_ref, 2) == expected[2:]
    assert list(store.iter_chains("t1")) == expected
    assert store.count_chains("t1") == 3 and store.count_chains("t2") == 1 and store.count_chains("t9") == 0


def test_import_chain_stores_sealed_events_verbatim_and_projects_the_record(store):
    events = sealed_chain("sr_imported", draft("push"), draft("sms", "deny"), draft("push", "withdraw"),
                          draft("sms", minutes=1))

    assert store.import_chain("t1", "u1", events) == 4

    assert store.subject_events("t1", "sr_imported") == events
    record = store.get_subject("t1", "u1")
    assert record == project("u1", "sr_imported", events)
    assert [r.subject_id for r in store.allowed_candidates("t1", "sms", None, 10)] == ["u1"]
    assert store.allowed_candidates("t1", "push", None, 10) == []
    assert store.list_chains("t1", None, 10) == [Chain("sr_imported", "u1", 4, 4, events[-1]["hash"])]
    assert [e["subject_id"] for e in exported(store)] == ["u1"] * 4
    assert append(store, "t1", "u1", draft("camera", minutes=2)).events[0]["prev_hash"] == events[-1]["hash"]


def test_import_chain_skips_what_is_there_and_resumes_a_partial_copy(store):
    events = sealed_chain("sr_imported", *[draft(f"p{i}") for i in range(5)])

    assert store.import_chain("t1", "u1", events[:2]) == 2
    assert store.get_subject("t1", "u1").seq == 2
    assert store.import_chain("t1", "u1", events) == 3
    assert store.import_chain("t1", "u1", events) == 0

    assert store.subject_events("t1", "sr_imported") == events
    assert store.get_subject("t1", "u1") == project("u1", "sr_imported", events)


def test_import_chain_refuses_events_that_do_not_continue_the_chain(store):
    events = sealed_chain("sr_imported", draft("push"), draft("sms"), draft("camera"))
    store.import_chain("t1", "u1", events[:1])

    with pytest.raises(Conflict):
        store.import_chain("t1", "u1", [events[0], events[2]])  # seq 2 is missing
    with pytest.raises(Conflict):
        store.import_chain("t1", "u1", [events[0], {**events[1], "prev_hash": "f" * 64}])
    with pytest.raises(ValueError, match="tenant_id"):
        store.import_chain("t2", "u1", events)
    assert store.subject_events("t1", "sr_imported") == events[:1]


def test_an_erased_chain_is_imported_without_a_subject(store):
    erased = sealed_chain("sr_gone", draft("push"), draft(None, "erase", minutes=1))

    assert store.import_chain("t1", None, erased) == 2
    assert store.import_chain("t1", "u1", sealed_chain("sr_gone_too", draft("push"),
                                                       draft(None, "erase", minutes=1))) == 2

    assert store.get_subject("t1", "u1") is None and store.list_subjects("t1", None, 10) == []
    assert {c.subject_ref: c.subject_id for c in store.iter_chains("t1")} == {"sr_gone": None,
                                                                              "sr_gone_too": None}
    assert [e["subject_id"] for e in exported(store)] == [None] * 4


def test_a_subject_with_another_chain_is_not_overwritten_by_an_import(store):
    mine = append(store, "t1", "u1", draft("push")).record

    with pytest.raises(Conflict):
        store.import_chain("t1", "u1", sealed_chain("sr_other", draft("sms")))
    assert store.get_subject("t1", "u1") == mine


# --- idempotency ---------------------------------------------------------------------------------

def test_an_idempotency_key_is_claimed_once_and_answers_replays(store):
    assert store.claim_idempotency_key("t1", "k1", "idem", "req-hash", fresh()) is None

    running = store.claim_idempotency_key("t1", "k1", "idem", "other-hash", fresh(1))
    assert (running.request_hash, running.status, running.body, running.created_at) == (
        "req-hash", None, None, fresh())

    store.complete_idempotency_key("t1", "k1", "idem", 201, '{"ok": true}', "sr_x")
    done = store.claim_idempotency_key("t1", "k1", "idem", "req-hash", fresh(2))
    assert (done.status, done.body, done.request_hash) == (201, '{"ok": true}', "req-hash")

    assert store.claim_idempotency_key("t1", "k2", "idem", "req-hash", fresh()) is None
    assert store.claim_idempotency_key("t2", "k1", "idem", "req-hash", fresh()) is None


def test_a_released_idempotency_key_can_be_claimed_again(store):
    store.claim_idempotency_key("t1", "k1", "idem", "req-hash", fresh())
    store.release_idempotency_key("t1", "k1", "idem")

    assert store.claim_idempotency_key("t1", "k1", "idem", "second", fresh(1)) is None
    assert store.claim_idempotency_key("t1", "k1", "idem", "third", fresh(2)).request_hash == "second"


def test_an_idempotency_key_answers_replays_for_24_hours_then_runs_anew(store):
    assert store.claim_idempotency_key("t1", "k1", "idem", "first", fresh()) is None
    store.complete_idempotency_key("t1", "k1", "idem", 201, '{"n": 1}', None)

    kept = store.claim_idempotency_key("t1", "k1", "idem", "again", fresh(24 * 60 - 1))
    assert (kept.request_hash, kept.status, kept.body) == ("first", 201, '{"n": 1}')

    assert store.claim_idempotency_key("t1", "k1", "idem", "later", fresh(24 * 60)) is None
    assert store.claim_idempotency_key("t1", "k1", "idem", "x", fresh(24 * 60 + 1)).request_hash == "later"


def test_an_idempotency_key_can_be_kept_longer(store):
    store.claim_idempotency_key("t1", "k1", "idem", "first", fresh(), ttl=timedelta(hours=48))

    assert store.claim_idempotency_key("t1", "k1", "idem", "x", fresh(47 * 60)).request_hash == "first"
    assert store.claim_idempotency_key("t1", "k1", "idem", "x", fresh(48 * 60)) is None


def reported(record: SubjectRecord, events: list[dict]) -> tuple[int, str]:
    """An answer naming the events it reports and the record's head."""
    return 201, json.dumps({"events": [e["event_id"] for e in events], "seq": record.seq})


def test_an_answer_kept_with_the_events_is_the_one_replayed(store):
    """A store either commits the answer with the events (Appended.answer) or leaves it to
    complete_idempotency_key; an answer it commits is what a replay gets, byte for byte."""
    store.claim_idempotency_key("t1", "k1", "idem", "h", fresh())
    appended = store.append("t1", "u1", plan_of(draft("push", idempotency_key="idem"), draft("sms")),
                            answer=Answer("k1", "idem", reported))
    if appended.answer is None:
        store.complete_idempotency_key("t1", "k1", "idem", *reported(appended.record, appended.events),
                                       appended.record.subject_ref)
    else:
        assert appended.answer == reported(appended.record, appended.events)
    replay = store.claim_idempotency_key("t1", "k1", "idem", "h", fresh(1))
    assert (replay.status, replay.body) == reported(appended.record, appended.events)
    assert json.loads(replay.body) == {"events": event_ids(appended.events), "seq": 2}


def test_a_resumed_request_counts_what_its_dead_attempt_wrote(store):
    """A retry after an attempt that wrote and died: its events are found by idempotency_key
    (those recorded since the claim), the plan's drafts for their purposes are left out, and
    the answer reports them."""
    append(store, "t1", "u1", draft("push", idempotency_key="idem", minutes=-5))  # same key, before the claim
    dead = append(store, "t1", "u1", draft("push", idempotency_key="idem", minutes=1),
                  draft("sms", idempotency_key="other", minutes=1)).events[:1]
    store.claim_idempotency_key("t1", "k1", "idem", "h", fresh())

    again = store.append("t1", "u1", plan_of(draft("push", idempotency_key="idem", minutes=2)),
                         answer=Answer("k1", "idem", reported, resumes=at(0)))
    assert event_ids(again.events) == event_ids(dead)
    assert again.record.seq == 3, "nothing written again"

    more = store.append("t1", "u1", plan_of(draft("push", idempotency_key="idem", minutes=2),
                                            draft("location", idempotency_key="idem", minutes=2)),
                        answer=Answer("k1", "idem", reported, resumes=at(0)))
    assert [e["purpose"] for e in more.events] == ["push", "location"], "the rest of the request is written"
    assert more.record.seq == 4
    if more.answer is not None:
        assert json.loads(more.answer[1])["events"] == event_ids(more.events)


# --- tenant isolation ------------------------------------------------------------------------------

def test_tenants_never_see_each_others_data(store):
    for tid in ("t1", "t2"):
        store.create_tenant(tenant(tid))
        store.add_api_key(api_key("k1", tenant_id=tid))
        store.add_subject_token_key(subject_token_key(f"kid-{tid}", tenant_id=tid))
        store.put_purpose(tid, purpose("push", title={"en": tid}))
        store.add_policy(tid, policy("2026-01", url=f"https://{tid}.example"))
        store.put_vendor(tid, vendor("umeng", name=tid))
    one = append(store, "t1", "u1", draft("push", event_id="ev_t1")).record
    two = append(store, "t2", "u1", draft("push", "deny", tenant_id="t2", event_id="ev_t2")).record
    append(store, "t2", "only-t2", draft("push", tenant_id="t2"))

    assert one.subject_ref != two.subject_ref
    assert store.get_subject("t1", "u1") == one and store.get_subject("t2", "u1") == two
    assert store.get_subjects("t1", ["u1", "only-t2"]) == {"u1": one}
    assert store.get_subject("t1", "only-t2") is None
    assert store.subject_events("t1", two.subject_ref) == []
    assert event_ids(store.subject_events("t2", two.subject_ref)) == ["ev_t2"]
    assert event_ids(exported(store, "t1")) == ["ev_t1"]
    assert exported(store, "t1", subject_ref=two.subject_ref) == []
    assert [r.subject_id for r in store.allowed_candidates("t1", "push", None, 10)] == ["u1"]
    assert store.allowed_candidates("t2", "push", None, 10)[0].subject_id == "only-t2"
    assert [r.subject_id for r in store.list_subjects("t1", None, 10)] == ["u1"]
    assert [p.title for p in store.list_purposes("t1")] == [{"en": "t1"}]
    assert store.get_purpose("t2", "push").title == {"en": "t2"}
    assert [p.url for p in store.list_policies("t1")] == ["https://t1.example"]
    assert [v.name for v in store.list_vendors("t2")] == ["t2"]
    assert [k.tenant_id for k in store.list_api_keys("t1", None, 10)] == ["t1"]
    assert store.get_api_key("t2", "k1").tenant_id == "t2"
    assert store.revoke_api_key("t1", "k1", at(1)).tenant_id == "t1"
    assert store.get_api_key("t2", "k1").revoked_at is None
    assert [k.kid for k in store.list_subject_token_keys("t1")] == ["kid-t1"]
    assert store.revoke_subject_token_key("t1", "kid-t2", at(1)) is None
    assert store.find_subject_token_key("kid-t2").revoked_at is None

    append(store, "t1", "u1", draft(None, "erase", minutes=1), erase=True)
    assert store.get_subject("t2", "u1") == two
    assert exported(store, "t2", subject_ref=two.subject_ref)[0]["subject_id"] == "u1"


# --- service signing keys and health ---------------------------------------------------------------

def test_signing_keys_are_added_listed_oldest_first_and_updated(store):
    newer = {"kid": "sk-2", "alg": "ES256", "created_at": ts(5), "active": True, "private_pem": "-----B"}
    older = {"kid": "sk-1", "alg": "EdDSA", "created_at": ts(1), "active": True, "private_pem": "-----A"}
    store.add_signing_key(newer)
    store.add_signing_key(older)

    store.update_signing_key("sk-1", {"active": False, "retired_at": ts(6)})
    store.update_signing_key("sk-unknown", {"active": False})

    assert store.list_signing_keys() == [{**older, "active": False, "retired_at": ts(6)}, newer]
    with pytest.raises(Conflict):
        store.add_signing_key({**older, "alg": "ES256"})


def test_ping_answers(store):
    store.ping()


def test_publishable_origins_are_known_until_revoked(store):
    from datetime import datetime, timezone

    from consent_api.domain.model import ApiKey

    at = datetime(2026, 3, 1, tzinfo=timezone.utc)
    key = ApiKey(id="key_web", tenant_id="t1", name="web", type="publishable", scopes=(),
                 origins=("https://shop.example.com",), key_hash="h" * 64, prefix="pk_x",
                 created_at=at)
    store.add_api_key(key)
    assert store.publishable_origin_known("https://shop.example.com")
    assert not store.publishable_origin_known("https://evil.example.net")
    assert store.publishable_origin_known("https://shop.example.com", tenant_id="t1")
    assert not store.publishable_origin_known("https://shop.example.com", tenant_id="t2")
    store.revoke_api_key("t1", "key_web", at)
    assert not store.publishable_origin_known("https://shop.example.com")
    assert not store.publishable_origin_known("https://shop.example.com", tenant_id="t1")
