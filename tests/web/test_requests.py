"""Rights requests through HTTP (DESIGN.md §9.2, §9.6): opening with a deadline, the queue and its
filters, answers and their finality, the tenant's settings, and the ledger that proves it all
(history, audit export, offline verification, erasure)."""

from __future__ import annotations

import json

import pytest

from consent_api.verify import verify_export
from tests.builders import decision

SUBJECT = "u-42"
# The apps' clock starts Sunday 2026-03-01 16:00 in Shanghai: 15 working days from Monday 2 March
# end with Friday 20 March, 24:00 Shanghai.
DUE = "2026-03-20T16:00:00.000000Z"


def open_request(tenant, subject=SUBJECT, expect=201, token=None, **body):
    body = {"type": "copy", "details": "请把我的数据副本发给我。", **body}
    return tenant.post(f"/v1/subjects/{subject}/requests", body, token=token or tenant.writer, expect=expect).get_json()


def test_a_request_opens_with_its_deadline_and_an_event_in_the_chain(api, app_tenant):
    app_tenant.grant(SUBJECT, "personalized_push")
    before = app_tenant.get(f"/v1/subjects/{SUBJECT}/consents", expect=200).get_json()
    opened = api.post(f"/v1/subjects/{SUBJECT}/requests", {"type": "copy", "channel": "ios"},
                      token=app_tenant.writer, expect=201).get_json()

    assert opened["id"].startswith("req_") and opened["status"] == "open"
    assert opened["created_at"] == "2026-03-01T08:00:00.000000Z" and opened["due_at"] == DUE
    assert opened["due_at_estimated"] is False and opened["channel"] == "ios" and opened["notices"] == []
    event = api.get(f"/v1/subjects/{SUBJECT}/history", token=app_tenant.reader, expect=200).get_json()["items"][-1]
    assert (event["action"], event["purpose"], event["request_id"], event["request_type"], event["status"],
            event["due_at"], event["notice"]) == ("request_opened", None, opened["id"], "copy", "open", DUE, None)
    assert "details" not in json.dumps(event) and "数据副本" not in json.dumps(event)  # free text stays out
    after = app_tenant.get(f"/v1/subjects/{SUBJECT}/consents", expect=200).get_json()
    assert after == before  # a request changes no consent


def test_a_subject_with_no_events_may_open_one(app_tenant):
    opened = open_request(app_tenant, "new-user")
    history = app_tenant.get("/v1/subjects/new-user/history", expect=200).get_json()["items"]
    assert [(e["seq"], e["action"], e["request_id"]) for e in history] == [(1, "request_opened", opened["id"])]


def test_a_subject_token_opens_and_reads_only_its_own_requests(api, app_tenant):
    token = app_tenant.subject_token(SUBJECT)
    mine = open_request(app_tenant, token=token)
    other = open_request(app_tenant, "u-other")

    listed = api.get(f"/v1/subjects/{SUBJECT}/requests", token=token, expect=200).get_json()
    assert [r["id"] for r in listed["items"]] == [mine["id"]]
    assert api.get(f"/v1/requests/{mine['id']}", token=token, expect=200).get_json() == mine
    api.get(f"/v1/requests/{other['id']}", token=token, expect=404)
    api.post("/v1/subjects/u-other/requests", {"type": "access"}, token=token, expect=403)
    api.get("/v1/subjects/u-other/requests", token=token, expect=403)
    api.get("/v1/requests", token=token, expect=403)
    event = app_tenant.get(f"/v1/subjects/{SUBJECT}/history", expect=200).get_json()["items"][-1]
    assert event["actor"]["type"] == "self"


def test_the_queue_filters_by_status_type_and_deadline_and_pages_by_due_at(api, app_tenant, clock):
    first = open_request(app_tenant, type="access")
    clock.advance(days=10)
    second = open_request(app_tenant, "u-2", type="delete")
    third = open_request(app_tenant, "u-3", type="delete")
    app_tenant.patch(f"/v1/requests/{third['id']}", {"status": "in_progress"}, expect=200)

    def ids(**query):
        body = api.get("/v1/requests", token=app_tenant.reader, query=query, expect=200).get_json()
        return [r["id"] for r in body["items"]]

    assert ids() == [first["id"], *sorted([second["id"], third["id"]])]
    assert ids(status="open") == [first["id"], second["id"]]
    assert ids(type="delete", status="in_progress") == [third["id"]]
    assert ids(due_before=second["due_at"]) == [first["id"]]

    page = api.get("/v1/requests", token=app_tenant.reader, query={"limit": 2}, expect=200).get_json()
    rest = api.get("/v1/requests", token=app_tenant.reader, query={"limit": 2, "cursor": page["next_cursor"]},
                   expect=200).get_json()
    assert [r["id"] for r in page["items"] + rest["items"]] == ids() and rest["next_cursor"] is None
    for query in ({"status": "done"}, {"type": "everything"}, {"due_before": "tomorrow"}, {"cursor": "nope"},
                  {"limit": 501}):
        api.get("/v1/requests", token=app_tenant.reader, query=query, expect=422)


def test_answers_move_a_request_on_and_final_is_final(api, app_tenant):
    opened = open_request(app_tenant)
    path = f"/v1/requests/{opened['id']}"

    working = api.patch(path, {"status": "in_progress", "note": "核实身份中"}, token=app_tenant.admin,
                        expect=200).get_json()
    assert working["status"] == "in_progress" and working["note"] == "核实身份中"
    done = api.patch(path, {"status": "completed"}, token=app_tenant.admin, expect=200).get_json()
    assert done["status"] == "completed" and done["note"] == "核实身份中"
    for body in ({"status": "in_progress"}, {"status": "completed"}, {"status": "rejected", "reason": "x"}):
        api.patch(path, body, token=app_tenant.admin, expect=409)

    events = app_tenant.get(f"/v1/subjects/{SUBJECT}/history", expect=200).get_json()["items"]
    assert [(e["action"], e["status"]) for e in events] == [
        ("request_opened", "open"), ("request_updated", "in_progress"), ("request_closed", "completed")]
    assert events[-1]["actor"]["type"] == "agent" and events[-1]["actor"]["id"].startswith("key_")


def test_a_rejection_needs_a_reason_and_only_admins_answer(api, app_tenant):
    opened = open_request(app_tenant)
    path = f"/v1/requests/{opened['id']}"
    api.patch(path, {"status": "rejected"}, token=app_tenant.admin, expect=422)
    api.patch(path, {"status": "rejected", "reason": "   "}, token=app_tenant.admin, expect=422)
    api.patch(path, {"status": "open"}, token=app_tenant.admin, expect=422)
    api.patch(path, {"status": "completed"}, token=app_tenant.writer, expect=403)
    api.patch(path, {"status": "completed"}, token=app_tenant.subject_token(SUBJECT), expect=403)
    rejected = api.patch(path, {"status": "rejected", "reason": "无法核实身份"}, token=app_tenant.admin,
                         expect=200).get_json()
    assert rejected["reason"] == "无法核实身份"
    api.patch("/v1/requests/req_unknown", {"status": "completed"}, token=app_tenant.admin, expect=404)


def test_another_tenants_requests_are_unknown(api, app_tenant, new_tenant):
    opened = open_request(app_tenant)
    other = new_tenant("Other")
    api.get(f"/v1/requests/{opened['id']}", token=other.admin, expect=404)
    api.patch(f"/v1/requests/{opened['id']}", {"status": "completed"}, token=other.admin, expect=404)
    assert api.get("/v1/requests", token=other.admin, expect=200).get_json()["items"] == []
    assert api.get(f"/v1/subjects/{SUBJECT}/requests", token=other.admin, expect=200).get_json()["items"] == []


def test_the_deadline_setting_applies_to_requests_opened_after_it(api, app_tenant):
    default = api.get("/v1/settings", token=app_tenant.reader, expect=200).get_json()
    assert default == {"request_deadline": {"days": 15, "calendar": "cn_workdays"}}
    before = open_request(app_tenant)

    changed = api.put("/v1/settings", {"request_deadline": {"days": 20, "calendar": "calendar_days"}},
                      token=app_tenant.admin, expect=200).get_json()
    assert changed == {"request_deadline": {"days": 20, "calendar": "calendar_days"}}
    after = open_request(app_tenant, "u-2")
    assert after["due_at"] == "2026-03-21T16:00:00.000000Z"  # 1 March + 20 days, 24:00 Shanghai
    assert app_tenant.get(f"/v1/requests/{before['id']}", expect=200).get_json()["due_at"] == DUE

    whole = api.put("/v1/settings", {"request_deadline": {"days": 20.0, "calendar": "calendar_days"}},
                    token=app_tenant.admin, expect=200).get_json()
    assert whole["request_deadline"]["days"] == 20  # JSON Schema's integer: 20.0 is one
    for bad in ({"days": 0, "calendar": "cn_workdays"}, {"days": 91, "calendar": "cn_workdays"},
                {"days": True, "calendar": "cn_workdays"}, {"days": 1.5, "calendar": "cn_workdays"},
                {"days": "5", "calendar": "cn_workdays"}, {"days": 5, "calendar": "lunar"}, {"days": 5}):
        api.put("/v1/settings", {"request_deadline": bad}, token=app_tenant.admin, expect=422)
    api.put("/v1/settings", {"request_deadline": {"days": 5, "calendar": "cn_workdays"}}, token=app_tenant.reader,
            expect=403)


def test_bad_requests_are_refused_and_write_nothing(api, app_tenant):
    for body in ({"type": "everything"}, {}, {"type": "copy", "details": "x" * 4001}, {"type": "copy", "extra": 1},
                 {"type": "copy", "channel": "fax"}):
        api.post(f"/v1/subjects/{SUBJECT}/requests", body, token=app_tenant.writer, expect=422)
    api.post("/v1/subjects/bad id/requests", {"type": "copy"}, token=app_tenant.writer, expect=422)
    api.post(f"/v1/subjects/{SUBJECT}/requests", data="{", token=app_tenant.writer, expect=400)
    app_tenant.get(f"/v1/subjects/{SUBJECT}/history", expect=404)


def test_an_idempotency_key_replays_the_first_answer(api, app_tenant):
    headers = {"Idempotency-Key": "req-1"}
    first = app_tenant.post(f"/v1/subjects/{SUBJECT}/requests", {"type": "copy"}, token=app_tenant.writer,
                            headers=headers, expect=201)
    again = app_tenant.post(f"/v1/subjects/{SUBJECT}/requests", {"type": "copy"}, token=app_tenant.writer,
                            headers=headers, expect=201)
    assert again.headers["Idempotent-Replayed"] == "true" and again.get_json() == first.get_json()
    assert len(app_tenant.get("/v1/requests", expect=200).get_json()["items"]) == 1


@pytest.mark.parametrize("fmt", ["ndjson", "csv"])
def test_an_export_holding_requests_verifies_offline(app_tenant, tmp_path, fmt):
    app_tenant.grant(SUBJECT, "personalized_push")
    opened = open_request(app_tenant)
    app_tenant.patch(f"/v1/requests/{opened['id']}", {"status": "completed"}, expect=200)
    open_request(app_tenant, "u-2", type="explain")

    export = app_tenant.get("/v1/audit/events", token=app_tenant.auditor, query={"format": fmt}, expect=200)
    manifest = app_tenant.get("/v1/audit/manifest", token=app_tenant.auditor, expect=200).get_json()["manifest"]
    jwks = app_tenant.get("/.well-known/jwks.json", expect=200).get_json()
    path = tmp_path / f"events.{fmt}"
    path.write_bytes(export.get_data())

    verdict = verify_export(path, manifest, jwks)
    assert verdict.ok, verdict
    assert verdict.events == 4
    text = export.get_data(as_text=True)
    assert "request_closed" in text and opened["id"] in text

    path.write_bytes(export.get_data().replace(b"request_closed", b"request_updated"))
    assert not verify_export(path, manifest, jwks).ok


def test_erasure_closes_pending_requests_and_forgets_who_asked(app_tenant):
    delete = open_request(app_tenant, type="delete")
    access = open_request(app_tenant, type="access")
    app_tenant.delete(f"/v1/subjects/{SUBJECT}", expect=204)

    closed = {r["type"]: r for r in app_tenant.get("/v1/requests", expect=200).get_json()["items"]}
    assert closed["delete"]["status"] == "completed" and closed["access"]["status"] == "rejected"
    assert all(r["subject_id"] is None and r["details"] is None for r in closed.values())
    app_tenant.patch(f"/v1/requests/{delete['id']}", {"status": "completed"}, expect=409)
    export = app_tenant.get("/v1/audit/events", token=app_tenant.auditor, expect=200).get_data(as_text=True)
    actions = [json.loads(line)["action"] for line in export.splitlines()]
    assert actions == ["request_opened", "request_opened", "request_closed", "request_closed", "erase"]
    assert access["id"] in export


def test_requests_and_the_api_stay_documented(api, app_tenant):
    """Every answer above went through openapi.yaml; this one checks a decision still does too."""
    app_tenant.record(SUBJECT, decision("personalized_push"), token=app_tenant.writer, expect=201)
    api.get(f"/v1/subjects/{SUBJECT}/history", token=app_tenant.reader, expect=200)
