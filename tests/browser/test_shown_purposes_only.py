"""Reject all and withdrawAll() decide exactly the purposes the banner shows switches for: a device
permission in the public config is the app's to ask, and the web never records a decision on it."""

from __future__ import annotations

import pytest

from tests.browser.pageops import BANNER, CHOOSABLE, ROOT, allowed, decide, ready, subject_id

pytestmark = pytest.mark.browser

LOCATION = {"kind": "device_permission", "title": {"en": "Location", "zh-CN": "位置信息"},
            "description": {"en": "Nearby shops in the app.", "zh-CN": "在 App 中查找附近门店。"}}


@pytest.fixture(scope="module")
def app_shop(make_shop):
    """A shop whose catalog also holds a device permission (not sensitive: the config lists it)."""
    shop = make_shop("Shop with an app")
    shop.tenant.define({"location": LOCATION})
    config = shop.tenant.get("/v1/public/config", token=shop.site.pk, headers={"Origin": shop.site.origin},
                             expect=200).get_json()
    assert "location" in {p["key"] for p in config["purposes"]}
    return shop


def test_reject_all_denies_only_the_shown_purposes(app_shop, page):
    page.goto(app_shop.page())
    page.locator(BANNER).wait_for()
    answer = decide(page, "reject-all")
    assert sorted(e["purpose"] for e in answer["events"]) == list(CHOOSABLE)
    assert sorted(app_shop.tenant.decisions(subject_id(page))) == [(p, "deny") for p in CHOOSABLE]
    state = app_shop.tenant.state(subject_id(page))["purposes"]
    assert state["location"]["status"] == "not_asked"


def test_withdraw_all_decides_only_the_shown_purposes(app_shop, page):
    page.goto(app_shop.page())
    decide(page, "accept-all")
    anon = subject_id(page)
    assert sorted(app_shop.tenant.decisions(anon)) == [(p, "grant") for p in CHOOSABLE]
    events = page.evaluate("ConsentSDK.withdrawAll().then(answer => answer.events)")
    assert sorted(e["purpose"] for e in events) == list(CHOOSABLE)
    history = app_shop.tenant.decisions(anon)
    assert sorted(history[3:]) == [(p, "withdraw") for p in CHOOSABLE]
    assert all(purpose != "location" for purpose, _ in history), history
    assert app_shop.tenant.state(anon)["purposes"]["location"]["status"] == "not_asked"
    assert allowed(page, ("location", "analytics")) == {"location": False, "analytics": False}


def test_withdraw_all_before_any_decision_records_the_shown_purposes_only(app_shop, page):
    page.goto(app_shop.page())
    ready(page)
    events = page.evaluate("ConsentSDK.withdrawAll().then(answer => answer.events)")
    assert sorted((e["purpose"], e["action"]) for e in events) == [(p, "deny") for p in CHOOSABLE]
    assert page.locator(ROOT).count() == 0, "a decision hides the banner"
