"""The console's webhook and request pages in Debian's chromium against a live `consent-api
serve` whose delivery worker sends to a real receiver on 127.0.0.1: an endpoint registered with
its secret shown once and never again, a failed delivery retried from the log until the receiver
has it; a rights request moved on from the queue, its answers in the ledger. axe-core and the
widths are checked with the other console pages (test_console.py)."""

from __future__ import annotations

import re
import time

import pytest

from tests.browser.pageops import TIMEOUT_MS
from tests.browser.test_console import sign_in
from tests.support import servers
from tests.support.api import Api, HttpClient
from tests.support.receiver import receiving

WORKER_ENV = {"CONSENT_WEBHOOK_ALLOW_PRIVATE": "1", "CONSENT_WEBHOOK_POLL_MS": "50"}


@pytest.fixture(scope="module")
def hooks_server(tmp_path_factory):
    """A server whose webhooks may reach 127.0.0.1 (as on premises), its worker polling often."""
    with servers.serving(tmp_path_factory.mktemp("hooks"), workers=1, env=WORKER_ENV) as server:
        yield server


def reload_until(page, selector: str) -> None:
    """Reload the page until selector is on it: the worker writes the log as it goes."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while page.locator(selector).count() == 0:
        assert time.monotonic() < deadline, f"{selector} did not appear"
        page.wait_for_timeout(200)
        page.reload()


def test_a_webhook_is_created_with_its_secret_shown_once_and_a_failed_delivery_retried(page, hooks_server):
    shop = Api(HttpClient(hooks_server.url)).new_app_tenant()
    failing = {"on": True}
    with receiving(path="/crm") as receiver:
        receiver.rule = lambda received: 503 if failing["on"] else None
        sign_in(page, hooks_server, shop.admin)
        page.locator("a[href='/console/webhooks']").click()
        page.fill("input[name=url]", receiver.url)
        page.check("input[name=types][value='consent.changed']")
        page.click("[data-action=create-webhook]")

        secret = page.locator("[data-secret]").input_value()
        assert secret.startswith("whsec_")
        page.click("[data-action=secret-done]")
        page.wait_for_url(re.compile(r".*/console/webhooks/wh_[0-9a-f]+$"))
        assert secret not in page.content()
        page.goto(hooks_server.url + "/console/webhooks")
        assert secret not in page.content() and page.locator(f"text={receiver.url}").count() == 1
        [hook] = shop.get("/v1/webhooks").get_json()["items"]
        assert hook["types"] == ["consent.changed"] and "secret" not in hook

        shop.grant("u-1", "personalized_push")
        receiver.wait_for(1)
        page.goto(f"{hooks_server.url}/console/webhooks/{hook['id']}")
        reload_until(page, "tr[data-status=failed] [data-action=retry]")
        assert page.locator("tr[data-status=failed] code", has_text="503").count() >= 1

        failing["on"] = False
        refused = len(receiver.requests)
        page.locator("tr[data-status=failed] [data-action=retry]").first.click()
        page.locator("[data-notice=retried]").wait_for()
        arrived = receiver.wait_for(refused + 1)
        assert {r.id for r in arrived} == {arrived[0].id}  # the same message, with its webhook-id, again
        reload_until(page, "tr[data-status=delivered]")
        page.goto(hooks_server.url + "/console/webhooks")
        assert page.locator(f"tr[data-webhook-id='{hook['id']}'] .badge--on", has_text="Delivered").count() == 1


def test_an_officer_moves_a_request_on_from_the_queue(page, shared_server):
    shop = Api(HttpClient(shared_server.url)).new_app_tenant()
    made = shop.post("/v1/subjects/u-7/requests", {"type": "delete", "details": "请注销我的账号并删除数据"},
                     token=shop.writer, expect=201).get_json()
    sign_in(page, shared_server, shop.admin, "zh-CN")
    page.locator(".console-nav a[href='/console/requests']").click()
    row = page.locator(f"tr[data-request-id='{made['id']}']")
    assert row.get_attribute("data-status") == "open"
    row.locator("a", has_text="删除我的个人信息").click()
    page.wait_for_url(f"**/console/requests/{made['id']}")

    page.check("input[name=status][value=in_progress]")
    page.fill("textarea[name=note]", "已转交数据团队核实身份")
    page.click("[data-action=answer-request]")
    page.locator("[data-notice=answered]").wait_for()
    assert shop.get(f"/v1/requests/{made['id']}").get_json()["status"] == "in_progress"

    page.check("input[name=status][value=rejected]")
    page.click("[data-action=answer-request]")  # no reason: refused, nothing changed
    page.locator("[data-error-field=reason]").wait_for()
    assert shop.get(f"/v1/requests/{made['id']}").get_json()["status"] == "in_progress"

    page.check("input[name=status][value=completed]")
    page.click("[data-action=answer-request]")
    page.locator("[data-notice=answered]").wait_for()
    assert page.locator("form[data-form=answer-request]").count() == 0
    assert [e["action"] for e in shop.history("u-7")] == ["request_opened", "request_updated", "request_closed"]
    assert page.locator("[data-section=request-events] li[data-event-id]").count() == 3
    page.goto(shared_server.url + "/console/requests")
    assert page.locator(f"tr[data-request-id='{made['id']}']").count() == 0  # answered: off the queue
    page.goto(shared_server.url + "/console/requests?status=completed")
    assert page.locator(f"tr[data-request-id='{made['id']}']").get_attribute("data-status") == "completed"
