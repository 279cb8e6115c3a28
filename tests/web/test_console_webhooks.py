"""The console's webhook pages through Flask's test client: an endpoint registered with its
secret shown once, enabled and disabled, tested, its secret rotated, deleted after the box is
ticked; the delivery log newest first a page at a time, a failed delivery retried and events
replayed from a time, all seen by a real receiver; what admin, audit and reader sessions may
do; another tenant's endpoint is 404; bad input is 422 with its message and changes nothing."""

from __future__ import annotations

import re

import pytest

from consent_api.domain.clock import parse_ts
from consent_api.services.delivery import Worker
from consent_api.web.pages.i18n import PAGE_ZONE
from tests.support.api import Api
from tests.support.receiver import receiving
from tests.web.test_console import Officer, post_forms

SECRET = re.compile(r'value="(whsec_[^"]+)"')
PUBLIC_URL = "https://93.184.216.34/hooks"


@pytest.fixture
def app(new_app):
    """Receivers on 127.0.0.1 are allowed (CONSENT_WEBHOOK_ALLOW_PRIVATE=1), as on premises."""
    return new_app(webhook_allow_private=1)


@pytest.fixture
def officer(client) -> Officer:
    return Officer(client)


@pytest.fixture
def admin(officer, app_tenant) -> Officer:
    officer.sign_in(app_tenant.admin)
    return officer


@pytest.fixture
def worker(app) -> Worker:
    """The delivery worker of the app (one per test: it holds the delivery lease)."""
    return Worker(app.extensions["consent_api.deps"])


def create(officer: Officer, url: str = PUBLIC_URL, **form) -> str:
    """Register an endpoint through the console's form; its id."""
    officer.page("/console/webhooks")
    response = officer.post("/console/webhooks", {"url": url, **form})
    assert response.status_code == 201, response.get_data(as_text=True)[-2000:]
    return re.search(r"<code>(wh_[^<]+)</code>", response.get_data(as_text=True)).group(1)


def hooks_of(tenant) -> list[dict]:
    return tenant.get("/v1/webhooks").get_json()["items"]


# --- endpoints -----------------------------------------------------------------------------------------

def test_an_endpoint_is_created_with_its_secret_shown_once(admin, app_tenant):
    admin.page("/console/webhooks")
    response = admin.post("/console/webhooks", {"url": PUBLIC_URL, "types": ["consent.changed", "subject.erased"],
                                                "purposes": "personalized_push", "description": "CRM"})
    html = response.get_data(as_text=True)

    assert response.status_code == 201 and 'data-secret' in html
    secret = SECRET.search(html).group(1)
    [hook] = hooks_of(app_tenant)
    assert hook["url"] == PUBLIC_URL and hook["types"] == ["consent.changed", "subject.erased"]
    assert hook["purposes"] == ["personalized_push"] and hook["description"] == "CRM" and hook["status"] == "enabled"
    assert f'href="/console/webhooks/{hook["id"]}"' in html  # "done" leads to the endpoint
    for page in ("/console/webhooks", f"/console/webhooks/{hook['id']}"):
        shown = admin.page(page)
        assert secret not in shown and PUBLIC_URL in shown
    assert f'data-webhook-id="{hook["id"]}" data-status="enabled"' in admin.page("/console/webhooks")


@pytest.mark.parametrize("form, field", [
    ({"url": "ftp://example.com/hooks"}, "url"),
    ({"url": ""}, "url"),
    ({"url": PUBLIC_URL, "types": "consent.bogus"}, "types_0"),
    ({"url": PUBLIC_URL, "purposes": "no_such_purpose"}, "purposes_0"),
    ({"url": PUBLIC_URL, "description": "x" * 501}, "description"),
])
def test_a_bad_endpoint_form_is_422_with_its_field_and_creates_nothing(admin, app_tenant, form, field):
    admin.page("/console/webhooks")
    response = admin.post("/console/webhooks", form)
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and f'data-error-field="{field}"' in html, html[-3000:]
    assert "whsec_" not in html and hooks_of(app_tenant) == []


def test_a_refused_form_keeps_exactly_what_was_ticked(admin, app_tenant):
    admin.page("/console/webhooks")
    html = admin.post("/console/webhooks", {"url": "ftp://x", "types": "request.created",
                                            "purposes": "precise_location"}).get_data(as_text=True)
    ticked = re.findall(r'name="(types|purposes)" value="([^"]+)" checked', html)
    assert ticked == [("types", "request.created"), ("purposes", "precise_location")]  # not "location"


def test_disable_enable_test_and_rotate(admin, app_tenant):
    hook_id = create(admin)
    page = f"/console/webhooks/{hook_id}"
    admin.page(page)

    response = admin.post(f"{page}/status", {"status": "disabled"})
    assert response.status_code == 302 and response.headers["Location"].endswith(f"{page}?done=disabled")
    assert app_tenant.get(f"/v1/webhooks/{hook_id}").get_json()["status"] == "disabled"
    html = admin.page(response.headers["Location"])
    assert 'data-notice="disabled"' in html and 'data-state="disabled"' in html and 'data-action="enable"' in html

    admin.post(f"{page}/status", {"status": "enabled"})
    assert app_tenant.get(f"/v1/webhooks/{hook_id}").get_json()["status"] == "enabled"
    assert admin.post(f"{page}/status", {"status": "paused"}).status_code == 422
    assert app_tenant.get(f"/v1/webhooks/{hook_id}").get_json()["status"] == "enabled"

    assert admin.post(f"{page}/test").headers["Location"].endswith("?done=tested")
    [row] = app_tenant.get(f"/v1/webhooks/{hook_id}/deliveries").get_json()["items"]
    assert row["type"] == "webhook.test" and row["status"] == "pending"
    assert 'data-status="pending"' in admin.page(page)

    rotated = admin.post(f"{page}/rotate-secret")
    html = rotated.get_data(as_text=True)
    assert rotated.status_code == 201 and SECRET.search(html)
    assert "2 signing" in admin.page(f"{page}?lang=en")


def test_deleting_needs_the_box_ticked(admin, app_tenant):
    hook_id = create(admin)
    admin.page(f"/console/webhooks/{hook_id}")

    refused = admin.post(f"/console/webhooks/{hook_id}/delete")
    assert refused.status_code == 422 and 'id="delete-error"' in refused.get_data(as_text=True)
    assert [h["id"] for h in hooks_of(app_tenant)] == [hook_id]

    deleted = admin.post(f"/console/webhooks/{hook_id}/delete", {"confirm": "yes"})
    assert deleted.status_code == 302 and deleted.headers["Location"].endswith("/console/webhooks?done=deleted")
    assert hooks_of(app_tenant) == []
    assert 'data-notice="deleted"' in admin.page("/console/webhooks?done=deleted")
    admin.page(f"/console/webhooks/{hook_id}", 404)


# --- the delivery log ------------------------------------------------------------------------------------

def test_a_failed_delivery_is_retried_from_the_log(worker, admin, app_tenant):
    with receiving(answers=[500]) as receiver:
        hook_id = create(admin, receiver.url)
        app_tenant.grant("u-1", "personalized_push")
        worker.run_once()
        html = admin.page(f"/console/webhooks/{hook_id}")
        [failed] = re.findall(r'data-delivery-id="([^"]+)" data-status="failed"', html)
        assert post_forms(html).count("retry") == 1 and "<code>500</code>" in html
        assert 'badge--danger">Failed' in admin.page("/console/webhooks?lang=en")  # the last attempt

        response = admin.post(f"/console/webhooks/{hook_id}/deliveries/{failed}/retry")
        assert response.headers["Location"].endswith("?done=retried")
        worker.run_once()

        assert [r.id for r in receiver.requests] == [receiver.requests[0].id] * 2
        html = admin.page(f"/console/webhooks/{hook_id}?status=delivered")
        assert re.findall(r'data-status="(\w+)"', html.split('data-table="deliveries"')[1]) == ["delivered"]
        assert admin.post(f"/console/webhooks/{hook_id}/deliveries/dlv_nope/retry").status_code == 404


def test_the_log_is_newest_first_a_page_at_a_time(admin, app_tenant, clock):
    hook_id = create(admin)
    admin.page(f"/console/webhooks/{hook_id}")
    for _ in range(27):
        clock.advance(seconds=1)
        admin.post(f"/console/webhooks/{hook_id}/test")
    first = admin.page(f"/console/webhooks/{hook_id}")
    times = re.findall(r'<time datetime="([^"]+)"', first)
    assert len(times) == 25 and times == sorted(times, reverse=True)
    older = re.search(r'href="([^"]+)" data-page="next"', first).group(1).replace("&amp;", "&")
    second = admin.page(older)
    rest = re.findall(r'<time datetime="([^"]+)"', second)
    assert len(rest) == 2 and max(rest) < min(times) and 'data-page="first"' in second

    for query in ("status=bogus", "cursor=not-a-cursor"):
        html = admin.page(f"/console/webhooks/{hook_id}?{query}", 422)
        assert 'data-error-field="log"' in html and len(re.findall(r"<time datetime=", html)) == 25


def test_events_are_sent_again_from_a_time(worker, officer, app_tenant, clock):
    with receiving() as receiver:
        hook_id = app_tenant.post("/v1/webhooks", {"url": receiver.url}, expect=201).get_json()["id"]
        recorded = []
        for subject in ("u-1", "u-2", "u-3"):
            clock.advance(hours=1)
            recorded.append(app_tenant.grant(subject, "personalized_push")["events"][0])
        worker.run_once()
        assert len(receiver.requests) == 3
        sent = {r.json["data"]["subject_id"]: r.id for r in receiver.requests}
        clock.advance(hours=1)
        admin = officer
        admin.sign_in(app_tenant.admin)
        admin.page(f"/console/webhooks/{hook_id}")
        since = parse_ts(recorded[1]["recorded_at"]).astimezone(PAGE_ZONE).strftime("%Y-%m-%dT%H:%M")

        response = admin.post(f"/console/webhooks/{hook_id}/replay", {"since": since})
        assert response.headers["Location"].endswith("?done=replayed")
        worker.run_once()

        again = receiver.requests[3:]
        # the same webhook-ids, and not the event before that time (subjects apart go out side by side)
        assert sorted(r.json["data"]["subject_id"] for r in again) == ["u-2", "u-3"]
        assert all(r.id == sent[r.json["data"]["subject_id"]] for r in again)


@pytest.mark.parametrize("since, message", [("", "say from when"), ("tomorrow", "not a date and time"),
                                            ("2099-01-01T00:00", "in the future")])
def test_a_bad_replay_time_is_422_with_its_message(admin, app_tenant, since, message):
    hook_id = create(admin)
    admin.page(f"/console/webhooks/{hook_id}")
    before = app_tenant.get(f"/v1/webhooks/{hook_id}").get_json()
    response = admin.post(f"/console/webhooks/{hook_id}/replay", {"since": since})
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and 'data-error-field="since"' in html and message in html
    assert app_tenant.get(f"/v1/webhooks/{hook_id}").get_json() == before


# --- who may ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["auditor", "reader"])
def test_only_admin_keys_see_webhooks_and_forged_posts_change_nothing(officer, app_tenant, role):
    hook = app_tenant.post("/v1/webhooks", {"url": PUBLIC_URL}, expect=201).get_json()
    officer.sign_in(getattr(app_tenant, role))
    officer.page("/console/", 200)
    officer.page("/console/webhooks", 403)
    officer.page(f"/console/webhooks/{hook['id']}", 403)
    assert 'href="/console/webhooks"' not in officer.page("/console/")
    page = f"/console/webhooks/{hook['id']}"
    for path, form in (("/console/webhooks", {"url": PUBLIC_URL}), (f"{page}/status", {"status": "disabled"}),
                       (f"{page}/test", {}), (f"{page}/rotate-secret", {}), (f"{page}/delete", {"confirm": "yes"}),
                       (f"{page}/replay", {"since": "2026-03-01T00:00"})):
        assert officer.post(path, form).status_code == 403, path
    assert [h["id"] for h in hooks_of(app_tenant)] == [hook["id"]]
    assert app_tenant.get(f"/v1/webhooks/{hook['id']}").get_json()["status"] == "enabled"
    assert app_tenant.get(f"/v1/webhooks/{hook['id']}/deliveries").get_json()["items"] == []


def test_an_admin_post_without_its_csrf_token_is_refused(admin, app_tenant):
    hook_id = create(admin)
    assert admin.post(f"/console/webhooks/{hook_id}/status", {"status": "disabled"}, csrf=False).status_code == 403
    assert admin.post(f"/console/webhooks/{hook_id}/delete", {"confirm": "yes"}, csrf=False).status_code == 403
    assert app_tenant.get(f"/v1/webhooks/{hook_id}").get_json()["status"] == "enabled"


def test_another_tenants_endpoint_is_404_and_untouched(admin, client, app_tenant):
    other = Api(client).new_app_tenant("Other shop")
    theirs = other.post("/v1/webhooks", {"url": "https://93.184.216.35/theirs"}, expect=201).get_json()
    other.post(f"/v1/webhooks/{theirs['id']}/test", expect=202)
    [row] = other.get(f"/v1/webhooks/{theirs['id']}/deliveries").get_json()["items"]
    page = f"/console/webhooks/{theirs['id']}"
    assert theirs["url"] not in admin.page("/console/webhooks")  # and the form's token is the session's
    admin.page(page, 404)
    for path, form in ((f"{page}/status", {"status": "disabled"}), (f"{page}/test", {}), (f"{page}/rotate-secret", {}),
                       (f"{page}/delete", {"confirm": "yes"}), (f"{page}/replay", {"since": "2026-03-01T00:00"}),
                       (f"{page}/deliveries/{row['id']}/retry", {})):
        assert admin.post(path, form).status_code == 404, path
    assert other.get(f"/v1/webhooks/{theirs['id']}").get_json() == {k: v for k, v in theirs.items() if k != "secret"}
    assert len(other.get(f"/v1/webhooks/{theirs['id']}/deliveries").get_json()["items"]) == 1


def test_the_pages_speak_chinese(admin, app_tenant):
    hook_id = create(admin)
    html = admin.page(f"/console/webhooks/{hook_id}?lang=zh-CN")
    assert '<html lang="zh-CN">' in html and "投递记录" in html and "从某一时间起重新发送" in html
    assert "接收端" in admin.page("/console/webhooks")


def test_lag_counts_from_the_oldest_event_not_delivered(admin, app_tenant, clock):
    create(admin)
    app_tenant.grant("u-1", "personalized_push")
    clock.advance(minutes=5)
    html = admin.page("/console/webhooks?lang=en")
    assert 'data-lag="300"' in html and "5 min" in html
