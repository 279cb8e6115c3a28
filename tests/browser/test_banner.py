"""The banner as a visitor meets it: first visit, the three choices, memory, history, withdrawal."""

from __future__ import annotations

import pytest

from tests.browser.pageops import (
    BANNER,
    CHOOSABLE,
    PANEL,
    ROOT,
    allowed,
    button,
    consent_cookie,
    decide,
    ready,
    subject_id,
    switches,
)
from tests.builders import POLICY

pytestmark = pytest.mark.browser


def test_first_visit_shows_the_banner_with_equal_choices(shop, page):
    page.goto(shop.page())
    banner = page.locator(BANNER)
    banner.wait_for()
    assert banner.get_attribute("aria-labelledby") == "consent-sdk-title"
    assert page.locator("#consent-sdk-title").inner_text() == "Your privacy choices"
    labels = {a: button(page, a).inner_text() for a in ("accept-all", "reject-all", "preferences")}
    assert labels == {"accept-all": "Accept all", "reject-all": "Reject all", "preferences": "Preferences"}
    assert all(button(page, a).evaluate("b => b.tagName") == "BUTTON" for a in labels)
    accept, reject = (button(page, a).evaluate(
        "b => { const s = getComputedStyle(b); return [s.backgroundColor, s.color, s.fontWeight, "
        "b.getBoundingClientRect().height]; }") for a in ("accept-all", "reject-all"))
    assert accept == reject, "Accept all and Reject all must be equally prominent"
    # Out of the page's flow (no layout shift) and first in <body> (first in Tab order).
    assert banner.evaluate("s => getComputedStyle(s).position") == "fixed"
    assert page.evaluate("document.body.firstElementChild.id") == "consent-sdk"
    assert page.evaluate("ConsentSDK.has('necessary') && !ConsentSDK.has('analytics')")
    assert page.evaluate("ConsentSDK.subjectId()").startswith("anon-")


def test_accept_all_is_recorded_remembered_and_in_the_server_history(shop, context, page):
    page.goto(shop.page())
    answer = decide(page, "accept-all")
    assert page.locator(ROOT).count() == 0
    assert allowed(page) == {"necessary": True, "analytics": True, "ads": True, "sharing": True}
    anon = subject_id(page)
    assert answer["state"]["subject_id"] == anon
    cookie = consent_cookie(context)
    assert cookie.startswith(f"1~{POLICY}~") and len(cookie) < 100

    history = shop.tenant.history(anon)
    assert sorted((e["purpose"], e["action"]) for e in history) == [(p, "grant") for p in CHOOSABLE]
    assert {e["source"]["channel"] for e in history} == {"web"}
    assert {e["policy_version"] for e in history} == {POLICY}
    assert all(not e["evidence"].get("gpc") and e["evidence"]["user_agent_sha256"] for e in history)

    page.reload()
    ready(page)
    assert page.locator(ROOT).count() == 0, "a remembered decision must not show the banner again"
    assert allowed(page)["ads"] is True
    assert subject_id(page) == anon
    assert len(shop.tenant.history(anon)) == 3, "a reload records nothing"


def test_reject_all_refuses_everything_and_is_remembered(shop, page):
    page.goto(shop.page())
    decide(page, "reject-all")
    assert allowed(page) == {"necessary": True, "analytics": False, "ads": False, "sharing": False}
    anon = subject_id(page)
    assert sorted(shop.tenant.decisions(anon)) == [(p, "deny") for p in CHOOSABLE]
    state = shop.tenant.state(anon)["purposes"]
    assert [state[p]["status"] for p in CHOOSABLE] == ["denied"] * 3

    page.reload()
    ready(page)
    assert page.locator(ROOT).count() == 0
    assert allowed(page)["analytics"] is False


def test_preferences_panel_saves_one_switch_per_purpose(shop, page):
    page.goto(shop.page())
    button(page, "preferences").click()
    dialog = page.locator(PANEL)
    assert dialog.get_attribute("aria-modal") == "true"
    assert page.locator("#" + dialog.get_attribute("aria-labelledby")).inner_text() == "Preferences"
    assert page.locator(BANNER).count() == 0, "one layer at a time"
    assert switches(page) == {"analytics": False, "ads": False, "sharing": False}, "no pre-ticked boxes"
    assert "Always on" in dialog.inner_text() and "Strictly necessary" in dialog.inner_text()
    assert "Face recognition" not in dialog.inner_text(), "sensitive purposes are asked in the app"
    # Vendor disclosure: company, data, purpose, policy link.
    page.locator(f"{PANEL} summary", has_text="Umeng analytics SDK").click()
    vendor = page.locator(f"{PANEL} details").inner_text()
    assert "友盟同欣（北京）科技有限公司" in vendor and "device identifiers, pages visited" in vendor
    assert "Analytics" in vendor
    assert page.locator(f"{PANEL} details a").get_attribute("href") == "https://www.umeng.com/policy"

    page.get_by_role("switch", name="Analytics").check()
    decide(page, "save")
    assert page.locator(ROOT).count() == 0
    assert allowed(page) == {"necessary": True, "analytics": True, "ads": False, "sharing": False}
    assert sorted(shop.tenant.decisions(subject_id(page))) == [
        ("ads", "deny"), ("analytics", "grant"), ("sharing", "deny")]

    page.reload()
    ready(page)
    assert page.locator(ROOT).count() == 0
    page.locator("#settings").click()  # data-consent-open reopens the panel
    assert switches(page) == {"analytics": True, "ads": False, "sharing": False}


def test_withdrawal_from_the_panel_is_as_easy_as_consent(shop, page):
    page.goto(shop.page())
    decide(page, "accept-all")
    anon = subject_id(page)

    page.locator("#settings").click()
    assert switches(page) == {"analytics": True, "ads": True, "sharing": True}
    page.get_by_role("switch", name="Personalised ads").uncheck()
    decide(page, "save")
    assert allowed(page)["ads"] is False and allowed(page)["analytics"] is True

    page.locator("#settings").click()
    decide(page, "reject-all")
    assert allowed(page) == {"necessary": True, "analytics": False, "ads": False, "sharing": False}
    history = shop.tenant.decisions(anon)
    assert history[3:] == [("ads", "withdraw"), ("analytics", "grant"), ("sharing", "grant"),
                           ("ads", "deny"), ("analytics", "withdraw"), ("sharing", "withdraw")]
    state = shop.tenant.state(anon)["purposes"]
    assert {p: state[p]["status"] for p in CHOOSABLE} == {
        "ads": "denied", "analytics": "withdrawn", "sharing": "withdrawn"}


def test_withdraw_all_from_the_api_resolves_once_recorded(shop, page):
    page.goto(shop.page())
    decide(page, "accept-all")
    changes = page.evaluate("""() => new Promise(resolve => {
        const seen = [];
        ConsentSDK.onChange(c => seen.push(c.allowed));
        ConsentSDK.withdrawAll().then(answer => resolve({seen, events: answer.events.length}));
    })""")
    assert changes["events"] == 3
    assert changes["seen"][-1] == {"necessary": True, "analytics": False, "ads": False, "sharing": False}
    assert sorted(shop.tenant.decisions(subject_id(page))[3:]) == [(p, "withdraw") for p in CHOOSABLE]
    page.reload()
    ready(page)
    assert page.locator(ROOT).count() == 0 and allowed(page)["analytics"] is False
