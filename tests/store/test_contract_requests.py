"""Contract, every adapter: rights requests (compare-and-set, the queue by deadline, erasure) and
tenant settings."""

from __future__ import annotations

from datetime import timedelta

import pytest

from consent_api.domain.requests import RightsRequest
from consent_api.errors import Conflict
from consent_api.store.port import RequestFilter
from tests.store.drafts import at


def request(request_id: str, *, tenant_id: str = "t1", subject_id: str | None = "u1", status: str = "open",
            type: str = "copy", due_days: float = 21, **fields) -> RightsRequest:
    return RightsRequest(id=request_id, tenant_id=tenant_id, subject_id=subject_id, type=type, status=status,
                         created_at=at(), due_at=at() + timedelta(days=due_days), updated_at=at(),
                         details=fields.pop("details", "请把副本发给我"), **fields)


def ids(found) -> list[str]:
    return [r.id for r in found]


def test_a_request_is_stored_and_read_back_whole(store):
    stored = request("req_1", due_at_estimated=True, channel="ios", note="n", reason=None, notices=("due_soon",))
    store.add_request(stored)

    assert store.get_request("t1", "req_1") == stored
    assert store.get_request("t2", "req_1") is None
    assert store.get_request("t1", "req_2") is None
    with pytest.raises(Conflict):
        store.add_request(stored)


def test_replacing_is_a_compare_and_set_on_the_version(store):
    first = request("req_1")
    store.add_request(first)
    answered = first.changed(status="completed")

    assert store.replace_request(answered, expected_version=1)
    assert not store.replace_request(first.changed(status="rejected"), expected_version=1)  # lost the race
    assert store.get_request("t1", "req_1") == answered and answered.version == 2
    assert not store.replace_request(request("req_9").changed(), expected_version=1)  # unknown


def test_the_queue_is_ordered_by_deadline_filtered_and_paged(store):
    for rid, days, status, kind, subject in (("req_c", 3, "open", "copy", "u1"), ("req_a", 9, "in_progress", "delete", "u2"),
                                             ("req_b", 3, "completed", "copy", "u1"), ("req_d", 20, "open", "access", "u3")):
        store.add_request(request(rid, due_days=days, status=status, type=kind, subject_id=subject))
    store.add_request(request("req_x", tenant_id="t2", due_days=1))

    assert ids(store.list_requests("t1", RequestFilter(), 10)) == ["req_b", "req_c", "req_a", "req_d"]
    assert ids(store.list_requests("t1", RequestFilter(statuses=("open", "in_progress")), 10)) == ["req_c", "req_a", "req_d"]
    assert ids(store.list_requests("t1", RequestFilter(type="copy"), 10)) == ["req_b", "req_c"]
    assert ids(store.list_requests("t1", RequestFilter(subject_id="u1"), 10)) == ["req_b", "req_c"]
    assert ids(store.list_requests("t1", RequestFilter(due_before=at() + timedelta(days=9)), 10)) == ["req_b", "req_c"]
    first = store.list_requests("t1", RequestFilter(), 2)
    after = (first[-1].due_at, first[-1].id)
    assert ids(store.list_requests("t1", RequestFilter(after=after), 10)) == ["req_a", "req_d"]
    assert ids(store.list_requests("t2", RequestFilter(), 10)) == ["req_x"]


def test_erasure_forgets_who_asked_and_what_they_wrote(store):
    store.add_request(request("req_1", note="called back"))
    store.add_request(request("req_2", subject_id="u2"))
    store.add_request(request("req_3", tenant_id="t2"))

    assert store.forget_request_subject("t1", "u1") == 1
    forgotten = store.get_request("t1", "req_1")
    assert (forgotten.subject_id, forgotten.details, forgotten.note, forgotten.status) == (None, None, None, "open")
    assert store.get_request("t1", "req_2").subject_id == "u2"
    assert store.get_request("t2", "req_3").subject_id == "u1"
    assert ids(store.list_requests("t1", RequestFilter(subject_id="u1"), 10)) == []


def test_settings_are_a_document_per_tenant(store):
    assert store.get_settings("t1") == {}
    store.put_settings("t1", {"request_deadline": {"days": 20, "calendar": "calendar_days"}})
    store.put_settings("t1", {"request_deadline": {"days": 10, "calendar": "cn_workdays"}})

    assert store.get_settings("t1") == {"request_deadline": {"days": 10, "calendar": "cn_workdays"}}
    assert store.get_settings("t2") == {}
