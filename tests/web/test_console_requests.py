"""The console's rights-request pages through Flask's test client: the queue by due_at with the
overdue and the due soon marked and estimated deadlines flagged, its filters and pages; a
request's details and ledger events; answers through the API's service (each a ledger event),
with a clear 422 or 409 that changes nothing; the overview's counts; what admin, audit and
reader sessions may do; another tenant's request is 404."""

from __future__ import annotations

import re

import pytest

from tests.support.api import Api
from tests.web.test_console import Officer, post_forms

THREE_DAYS = {"request_deadline": {"days": 3, "calendar": "calendar_days"}}


@pytest.fixture
def officer(client) -> Officer:
    return Officer(client)


def open_request(tenant, subject: str = "u-1", kind: str = "access", details: str | None = "请告诉我你们保存了哪些信息") -> dict:
    body = {"type": kind, **({"details": details} if details else {})}
    return tenant.post(f"/v1/subjects/{subject}/requests", body, token=tenant.writer, expect=201).get_json()


def queue_ids(html: str) -> list[str]:
    return re.findall(r'<tr data-request-id="([^"]+)"', html)


def urgencies(html: str) -> dict[str, str | None]:
    rows = re.findall(r'<tr data-request-id="([^"]+)" data-status="[^"]+"(?: data-urgency="([^"]+)")?', html)
    return {rid: urgency or None for rid, urgency in rows}


# --- the queue --------------------------------------------------------------------------------------------

def test_the_queue_is_by_due_date_with_the_overdue_and_the_due_soon_marked(officer, app_tenant, clock):
    app_tenant.put("/v1/settings", THREE_DAYS, expect=200)
    first = open_request(app_tenant, "u-1")
    clock.advance(days=2)
    second = open_request(app_tenant, "u-2", "delete")
    clock.advance(days=2)
    third = open_request(app_tenant, "u-3", "copy")
    officer.sign_in(app_tenant.admin)

    html = officer.page("/console/requests?lang=en")

    assert queue_ids(html) == [first["id"], second["id"], third["id"]]
    assert urgencies(html) == {first["id"]: "overdue", second["id"]: "due_soon", third["id"]: None}
    assert 'class="row--overdue"' in html and "Overdue" in html and "Due soon" in html
    overview = officer.page("/console/")
    counts = dict(re.findall(r'data-count="(\w+)"><strong>(\d+)</strong>', overview))
    assert counts == {"open": "3", "due_soon": "1", "overdue": "1"}
    assert 'href="/console/requests" data-count="overdue"' in overview


def test_an_estimated_deadline_is_flagged(officer, app_tenant, clock):
    clock.now = clock.now.replace(year=2040)  # past the holiday calendar's known years
    made = open_request(app_tenant)
    assert made["due_at_estimated"] is True
    officer.sign_in(app_tenant.admin)
    assert "data-estimated" in officer.page("/console/requests")
    assert "data-estimated" in officer.page(f"/console/requests/{made['id']}")


def test_filters_by_status_and_type_and_pages(officer, app_tenant):
    made = [open_request(app_tenant, f"u-{n}", "access" if n % 2 else "delete", None) for n in range(30)]
    closed = made[0]
    app_tenant.patch(f"/v1/requests/{closed['id']}", {"status": "completed"}, expect=200)
    officer.sign_in(app_tenant.admin)

    pending = officer.page("/console/requests")
    assert len(queue_ids(pending)) == 25 and closed["id"] not in queue_ids(pending)
    later = re.search(r'href="([^"]+)" data-page="next"', pending).group(1).replace("&amp;", "&")
    rest = queue_ids(officer.page(later))
    assert len(rest) == 4 and not set(rest) & set(queue_ids(pending))

    assert queue_ids(officer.page("/console/requests?status=completed")) == [closed["id"]]
    deletes = queue_ids(officer.page("/console/requests?status=all&type=delete"))
    assert sorted(deletes) == sorted(r["id"] for r in made if r["type"] == "delete")
    assert len(queue_ids(officer.page("/console/requests?status=all"))) == 25


@pytest.mark.parametrize("query, field", [("status=closed", "status"), ("type=everything", "type"),
                                          ("cursor=not-a-cursor", "cursor")])
def test_a_bad_filter_is_422_with_its_message(officer, app_tenant, query, field):
    open_request(app_tenant)
    officer.sign_in(app_tenant.admin)
    html = officer.page(f"/console/requests?{query}", 422)
    assert f'data-error-field="{field}"' in html and 'role="alert"' in html


# --- one request and its answers ------------------------------------------------------------------------

def test_a_request_shows_its_details_and_events(officer, app_tenant):
    made = open_request(app_tenant, "u-1", "copy")
    officer.sign_in(app_tenant.admin)
    html = officer.page(f"/console/requests/{made['id']}?lang=zh-CN")
    assert "获取我的个人信息副本" in html and "请告诉我你们保存了哪些信息" in html
    [event] = app_tenant.history("u-1")
    assert f'data-event-id="{event["event_id"]}" data-action="request_opened"' in html and event["hash"] in html
    assert "answer-request" in post_forms(html)


def test_status_changes_go_through_the_service_and_into_the_ledger(officer, app_tenant):
    made = open_request(app_tenant)
    officer.sign_in(app_tenant.admin)
    page = f"/console/requests/{made['id']}"
    officer.page(page)

    response = officer.post(page, {"status": "in_progress", "note": "已转交数据团队"})
    assert response.status_code == 302 and response.headers["Location"].endswith(f"{page}?done=answered")
    assert app_tenant.get(f"/v1/requests/{made['id']}").get_json()["status"] == "in_progress"

    officer.page(page)
    officer.post(page, {"status": "rejected", "reason": "无法核实申请人身份"})
    answered = app_tenant.get(f"/v1/requests/{made['id']}").get_json()
    assert answered["status"] == "rejected" and answered["reason"] == "无法核实申请人身份"
    assert answered["note"] == "已转交数据团队"
    events = app_tenant.history("u-1")
    assert [(e["action"], e["status"]) for e in events] == [
        ("request_opened", "open"), ("request_updated", "in_progress"), ("request_closed", "rejected")]
    assert events[-1]["source"]["collection_point"] == "console"
    [admin_key] = [k for k in app_tenant.get("/v1/keys").get_json()["items"] if app_tenant.admin.startswith(k["prefix"])]
    assert events[-1]["actor"] == {"type": "agent", "id": admin_key["id"], "reason": None}
    html = officer.page(page)
    assert "answer-request" not in post_forms(html) and 'data-reason' in html


def test_rejecting_without_a_reason_is_422_and_changes_nothing(officer, app_tenant):
    made = open_request(app_tenant)
    officer.sign_in(app_tenant.admin)
    page = f"/console/requests/{made['id']}"
    officer.page(page)
    for form, field in (({"status": "rejected"}, "reason"), ({"status": "reopened"}, "status"), ({}, "status")):
        response = officer.post(page, form)
        assert response.status_code == 422 and f'data-error-field="{field}"' in response.get_data(as_text=True)
    assert app_tenant.get(f"/v1/requests/{made['id']}").get_json()["status"] == "open"
    assert len(app_tenant.history("u-1")) == 1


def test_a_final_request_is_409_and_stays_final(officer, app_tenant):
    made = open_request(app_tenant)
    officer.sign_in(app_tenant.admin)
    page = f"/console/requests/{made['id']}"
    officer.page(page)
    app_tenant.patch(f"/v1/requests/{made['id']}", {"status": "completed"}, expect=200)
    response = officer.post(page, {"status": "in_progress"})
    assert response.status_code == 409 and "data-conflict" in response.get_data(as_text=True)
    assert app_tenant.get(f"/v1/requests/{made['id']}").get_json()["status"] == "completed"
    assert len(app_tenant.history("u-1")) == 2


# --- who may --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["auditor", "reader"])
def test_readers_and_auditors_see_the_queue_but_cannot_answer(officer, app_tenant, role):
    made = open_request(app_tenant)
    officer.sign_in(getattr(app_tenant, role))
    assert post_forms(officer.page("/console/requests")) == ["sign-out"]
    page = f"/console/requests/{made['id']}"
    assert post_forms(officer.page(page)) == ["sign-out"]
    assert officer.post(page, {"status": "completed"}).status_code == 403
    assert officer.post(page, {"status": "completed"}, csrf=False).status_code == 403
    assert app_tenant.get(f"/v1/requests/{made['id']}").get_json()["status"] == "open"


def test_another_tenants_request_is_404_and_untouched(officer, client, app_tenant):
    other = Api(client).new_app_tenant("Other shop")
    theirs = open_request(other, "them-1")
    officer.sign_in(app_tenant.admin)
    assert theirs["id"] not in officer.page("/console/requests?status=all")
    officer.page(f"/console/requests/{theirs['id']}", 404)
    officer.page("/console/requests")
    assert officer.post(f"/console/requests/{theirs['id']}", {"status": "completed"}).status_code == 404
    assert other.get(f"/v1/requests/{theirs['id']}").get_json()["status"] == "open"
