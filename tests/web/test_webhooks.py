"""The change feed and webhooks over HTTP (DESIGN.md §9.1, §9.6): shapes against openapi.yaml,
scopes, SSRF refusals, cursors, and the delivery log as the worker fills it."""

from __future__ import annotations

import json
import threading

import pytest

from consent_api.services.delivery import Worker
from consent_api.services.pages import encode_cursor
from tests.support.apps import ON_BOTH_STORES
from tests.support.receiver import receiving

pytestmark = ON_BOTH_STORES


def worker_of(app) -> Worker:
    return Worker(app.extensions["consent_api.deps"])


@pytest.fixture
def private_app(new_app):
    """An app whose operator lets webhooks reach 127.0.0.1 (CONSENT_WEBHOOK_ALLOW_PRIVATE=1)."""
    return new_app(webhook_allow_private=1)


@pytest.fixture
def hooks(private_app):
    """A tenant of private_app, and a way to register a receiver as its webhook."""
    from tests.support.api import Api

    api = Api(private_app.test_client(), validate=True)
    return api, api.new_tenant()


def feed(api, tenant, token=None, **query) -> list[dict]:
    """Every event of the tenant's feed, following next_cursor to the end."""
    events, after = [], None
    while True:
        page = api.get("/v1/changes", token=token or tenant.reader or tenant.admin,
                       query={**query, **({"after": after} if after else {})}, expect=200).get_json()
        assert page["next_cursor"]
        events += page["items"]
        if not page["items"]:
            return events
        after = page["next_cursor"]


# --- the change feed -----------------------------------------------------------------------------

def test_the_feed_holds_every_event_once_in_commit_order_erased_subjects_without_id(api, tenant):
    tenant.policy("2026-02")
    written = []
    for subject in ("a", "b", "a", "c"):
        written += tenant.grant(subject, "push")["events"]
    written += tenant.refuse("b", "push")["events"]
    tenant.erase("c")
    events = feed(api, tenant, limit=2)
    assert [e["event_id"] for e in events[:5]] == [e["event_id"] for e in written]
    assert [(e["subject_id"], e["action"]) for e in events[5:]] == [(None, "erase")]
    assert events[3]["subject_id"] is None  # c's grant: the subject is erased now
    assert len({e["event_id"] for e in events}) == len(events) == 6


def test_an_empty_feed_still_answers_a_cursor_to_resume_from(api, tenant):
    page = api.get("/v1/changes", token=tenant.admin, expect=200).get_json()
    assert page["items"] == [] and page["next_cursor"]
    tenant.grant("u1", "push")
    after = api.get("/v1/changes", token=tenant.admin, query={"after": page["next_cursor"]}, expect=200).get_json()
    assert [e["subject_id"] for e in after["items"]] == ["u1"]


@pytest.mark.parametrize("query, field", [
    ({"wait": "31"}, "wait"), ({"wait": "-1"}, "wait"), ({"wait": "soon"}, "wait"), ({"wait": "nan"}, "wait"),
    ({"limit": "501"}, "limit"), ({"after": "not-a-cursor"}, "after"),
    ({"after": encode_cursor({"v": 1, "p": 1, "t": "00000000"})}, "after"),
    ({"after": encode_cursor([1, 2])}, "after"),
])
def test_bad_feed_queries_are_422(api, tenant, query, field):
    answer = api.get("/v1/changes", token=tenant.admin, query=query, expect=422)
    assert field in answer.get_json()["errors"]


def test_a_cursor_of_another_tenant_or_beyond_the_feed_is_422(api, new_tenant):
    one, other = new_tenant("One"), new_tenant("Other")
    one.grant("u1", "push")
    cursor = api.get("/v1/changes", token=one.admin, expect=200).get_json()["next_cursor"]
    assert "another tenant" in api.get("/v1/changes", token=other.admin, query={"after": cursor},
                                       expect=422).get_json()["errors"]["after"][0]
    beyond = encode_cursor({"v": 1, "p": 10**9, "t": json.loads(__import__("base64").urlsafe_b64decode(
        cursor + "==="))["t"]})
    assert "beyond" in api.get("/v1/changes", token=one.admin, query={"after": beyond},
                               expect=422).get_json()["errors"]["after"][0]


def test_wait_holds_an_empty_page_until_an_event_arrives(app, client, tenant):
    start = client.get("/v1/changes", headers=tenant.headers).get_json()["next_cursor"]
    answers = []

    def poll():
        answers.append(app.test_client().get(f"/v1/changes?after={start}&wait=30", headers=tenant.headers))

    waiting = threading.Thread(target=poll)
    waiting.start()
    tenant.grant("late", "push")
    waiting.join(timeout=60)
    assert not waiting.is_alive()
    assert [e["subject_id"] for e in answers[0].get_json()["items"]] == ["late"]


def test_the_feed_needs_the_read_scope(api, tenant):
    tenant.issue_every_role()
    api.get("/v1/changes", token=tenant.reader, expect=200)
    api.get("/v1/changes", token=tenant.writer, expect=403)
    api.get("/v1/changes", token=tenant.auditor, expect=403)


# --- registering endpoints -------------------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "http://127.0.0.1/hooks", "https://10.0.0.1/", "https://169.254.169.254/", "https://localhost/x",
    "https://[::1]/", "https://[::ffff:10.0.0.1]/", "https://100.64.0.1/", "https://0.0.0.0/",
    "ftp://example.com/", "https://user:pw@example.com/", "https://", "not a url",
])
def test_private_loopback_link_local_and_non_https_urls_are_refused(api, tenant, url):
    answer = api.post("/v1/webhooks", {"url": url}, token=tenant.admin, expect=422)
    assert "url" in answer.get_json()["errors"]
    assert api.get("/v1/webhooks", token=tenant.admin, expect=200).get_json()["items"] == []


def test_the_operator_switch_allows_private_receivers(hooks):
    api, tenant = hooks
    for url in ("http://127.0.0.1/hooks", "https://10.0.0.1/", "https://169.254.169.254/"):
        api.post("/v1/webhooks", {"url": url}, token=tenant.admin, expect=201)


def test_create_read_update_delete(hooks):
    api, tenant = hooks
    created = api.post("/v1/webhooks", {"url": "http://127.0.0.1:9/a", "types": ["consent.changed"],
                                        "purposes": ["push"], "description": "CRM"},
                       token=tenant.admin, expect=201).get_json()
    assert created["id"].startswith("wh_") and created["secret"].startswith("whsec_")
    assert created["status"] == "enabled" and created["types"] == ["consent.changed"]
    one = api.get(f"/v1/webhooks/{created['id']}", token=tenant.admin, expect=200).get_json()
    assert "secret" not in one and one["url"] == "http://127.0.0.1:9/a"
    changed = api.call("PATCH", f"/v1/webhooks/{created['id']}", {"status": "disabled", "types": None},
                       token=tenant.admin, expect=200).get_json()
    assert changed["status"] == "disabled" and changed["types"] is None and changed["disabled_at"]
    assert [w["id"] for w in api.get("/v1/webhooks", token=tenant.admin, expect=200).get_json()["items"]] == [
        created["id"]]
    rotated = api.post(f"/v1/webhooks/{created['id']}/rotate-secret", token=tenant.admin, expect=200).get_json()
    assert rotated["secret"] != created["secret"]
    api.delete(f"/v1/webhooks/{created['id']}", token=tenant.admin, expect=204)
    api.get(f"/v1/webhooks/{created['id']}", token=tenant.admin, expect=404)


def test_unknown_types_purposes_and_fields_are_422(hooks):
    api, tenant = hooks
    for body in ({"url": "http://127.0.0.1/", "types": ["consent.maybe"]},
                 {"url": "http://127.0.0.1/", "purposes": ["undefined_purpose"]},
                 {"url": "http://127.0.0.1/", "secret": "whsec_mine"},
                 {"url": "http://127.0.0.1/", "types": []}):
        api.post("/v1/webhooks", body, token=tenant.admin, expect=422)


def test_webhooks_are_the_admin_s_and_another_tenant_s_are_404(api, new_tenant):
    one, other = new_tenant("One", roles=True), new_tenant("Other")
    api.post("/v1/webhooks", {"url": "https://10.0.0.1/"}, token=one.reader, expect=403)
    api.get("/v1/webhooks", token=one.writer, expect=403)
    created = api.post("/v1/webhooks", {"url": "https://93.184.216.34/hooks"}, token=one.admin, expect=201).get_json()
    for method, path in (("GET", ""), ("DELETE", ""), ("POST", "/rotate-secret"), ("POST", "/test"),
                         ("GET", "/deliveries")):
        api.call(method, f"/v1/webhooks/{created['id']}{path}", token=other.admin, expect=404)


# --- deliveries over HTTP --------------------------------------------------------------------------

def test_the_delivery_log_test_retry_replay_and_the_audit_export(private_app, hooks):
    api, tenant = hooks
    tenant.issue_every_role()
    with receiving(answers=[500]) as receiver:
        hook = api.post("/v1/webhooks", {"url": receiver.url}, token=tenant.admin, expect=201).get_json()
        granted = tenant.grant("u1", "push")["events"][0]
        worker = worker_of(private_app)
        worker.run_once()
        rows = api.get(f"/v1/webhooks/{hook['id']}/deliveries", token=tenant.admin, expect=200).get_json()["items"]
        [failed] = [r for r in rows if r["status"] == "failed"]
        [pending] = [r for r in rows if r["status"] == "pending"]
        assert failed["event_id"] == granted["event_id"] and failed["response_status"] == 500
        assert failed["next_attempt_at"] == pending["at"] and pending["attempt"] == 2
        only_failed = api.get(f"/v1/webhooks/{hook['id']}/deliveries", token=tenant.admin,
                              query={"status": "failed"}, expect=200).get_json()["items"]
        assert [r["id"] for r in only_failed] == [failed["id"]]
        retried = api.post(f"/v1/webhooks/{hook['id']}/deliveries/{failed['id']}/retry", token=tenant.admin,
                           expect=202).get_json()
        assert retried["id"] == pending["id"] and retried["status"] == "pending"
        worker.run_once()
        assert [r.id for r in receiver.requests] == [failed["message_id"]] * 2
        test = api.post(f"/v1/webhooks/{hook['id']}/test", token=tenant.admin, expect=202).get_json()
        assert test["type"] == "webhook.test" and test["status"] == "pending"
        replayed = api.post(f"/v1/webhooks/{hook['id']}/replay", {"after": None}, token=tenant.admin,
                            expect=202).get_json()
        assert replayed["webhook_id"] == hook["id"]
        worker.run_once()
        assert [r.json["type"] for r in receiver.requests[2:]].count("webhook.test") == 1
        assert [r.id for r in receiver.requests].count(failed["message_id"]) == 3
        lines = api.get("/v1/audit/deliveries", token=tenant.auditor, expect=200)
        assert lines.mimetype == "application/x-ndjson"
        exported = [json.loads(line) for line in lines.get_data(as_text=True).splitlines()]
        assert {r["status"] for r in exported} == {"delivered", "failed"}
        assert all(r["url"] == receiver.url for r in exported)
        api.get("/v1/audit/deliveries", token=tenant.reader, expect=403)
        api.get("/v1/audit/deliveries", token=tenant.auditor, query={"purpose": "push"}, expect=422)


def test_bad_delivery_queries_are_422_and_unknown_rows_404(hooks):
    api, tenant = hooks
    hook = api.post("/v1/webhooks", {"url": "http://127.0.0.1:9/"}, token=tenant.admin, expect=201).get_json()
    api.get(f"/v1/webhooks/{hook['id']}/deliveries", token=tenant.admin, query={"status": "lost"}, expect=422)
    api.get(f"/v1/webhooks/{hook['id']}/deliveries", token=tenant.admin, query={"cursor": encode_cursor(1)},
            expect=422)
    api.post(f"/v1/webhooks/{hook['id']}/deliveries/dlv_unknown/retry", token=tenant.admin, expect=404)
    api.post(f"/v1/webhooks/{hook['id']}/replay", {"after": "nope"}, token=tenant.admin, expect=422)


def test_metrics_count_deliveries_by_status_and_the_lag_per_endpoint(private_app, hooks, clock):
    api, tenant = hooks
    with receiving(answers=[500]) as receiver:
        hook = api.post("/v1/webhooks", {"url": receiver.url}, token=tenant.admin, expect=201).get_json()
        tenant.grant("u1", "push")
        clock.advance(minutes=2)
        text = api.get("/metrics", expect=200).get_data(as_text=True)
        assert f'consent_api_webhook_lag_seconds{{webhook_id="{hook["id"]}"}} 120.0' in text  # not read yet
        worker = worker_of(private_app)
        worker.run_once()  # 500
        clock.advance(seconds=5)
        worker.run_once()  # 204
        text = api.get("/metrics", expect=200).get_data(as_text=True)
        assert 'consent_api_webhook_deliveries_total{status="delivered"} 1.0' in text
        assert 'consent_api_webhook_deliveries_total{status="failed"} 1.0' in text
        assert f'consent_api_webhook_lag_seconds{{webhook_id="{hook["id"]}"}} 0.0' in text
