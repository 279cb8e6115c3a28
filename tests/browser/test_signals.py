"""What the snippet drives on the page: parked scripts, Global Privacy Control, Consent Mode."""

from __future__ import annotations

import pytest

from tests.browser.pageops import (
    BANNER,
    CHOOSABLE,
    GPC_ON,
    GTAG_RECORDER,
    PANEL,
    button,
    consent_mode,
    decide,
    ready,
    subject_id,
    switches,
)

pytestmark = pytest.mark.browser

PARKED = """
<script>log.push('page')</script>
<script type="text/plain" data-consent="analytics">log.push('a1')</script>
<script type="text/plain" data-consent="analytics" src="/slow.js?ms=300&mark=a2"></script>
<script type="text/plain" data-consent="ads">log.push('ads')</script>
<script type="text/plain" data-consent="analytics">log.push('a3')</script>
<script type="text/plain" data-consent="necessary">log.push('n')</script>
"""


def log_of(page, length: int) -> list[str]:
    page.wait_for_function("n => window.log.length >= n", arg=length)
    return page.evaluate("window.log")


def test_parked_scripts_run_only_after_consent_and_in_document_order(shop, page):
    page.goto(shop.page(PARKED))
    page.locator(BANNER).wait_for()
    assert log_of(page, 2) == ["page", "n"], "only essential purposes run before a decision"
    page.wait_for_timeout(100)
    assert page.evaluate("window.log") == ["page", "n"]

    button(page, "preferences").click()
    page.get_by_role("switch", name="Analytics").check()
    decide(page, "save")
    # a2 loads slowly (300 ms) from src; a3 still waits for it.
    assert log_of(page, 5) == ["page", "n", "a1", "a2", "a3"]
    page.wait_for_timeout(100)
    assert "ads" not in page.evaluate("window.log")

    page.evaluate("ConsentSDK.show()")
    decide(page, "accept-all")
    assert log_of(page, 6)[5:] == ["ads"]
    assert page.locator("script[data-consent]").evaluate_all(
        "ss => ss.every(s => s.type !== 'text/plain')"), "every parked script ran exactly once"

    page.reload()
    ready(page)
    # A remembered decision runs them at load, strictly in document order.
    assert log_of(page, 6) == ["page", "a1", "a2", "ads", "a3", "n"]


def test_global_privacy_control_keeps_marketing_and_sharing_off_and_is_recorded(shop, context):
    context.add_init_script(GPC_ON)
    page = context.new_page()
    page.goto(shop.page())
    banner = page.locator(BANNER)
    assert "Global Privacy Control" in banner.inner_text()

    button(page, "preferences").click()
    assert "Global Privacy Control" in page.locator(PANEL).inner_text()
    assert switches(page) == {"analytics": False, "ads": False, "sharing": False}
    page.get_by_role("switch", name="Analytics").check()
    with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/v1/public/consents")) as sent:
        decide(page, "save")
    assert sent.value.post_data_json["gpc"] is True
    anon = subject_id(page)
    history = shop.tenant.history(anon)
    assert sorted((e["purpose"], e["action"]) for e in history) == [
        ("ads", "deny"), ("analytics", "grant"), ("sharing", "deny")]
    assert all(e["evidence"]["gpc"] is True for e in history)

    # An explicit Accept all still grants, and still records the signal.
    page.evaluate("ConsentSDK.show()")
    decide(page, "accept-all")
    latest = shop.tenant.history(anon)[3:]
    assert sorted((e["purpose"], e["action"]) for e in latest) == [(p, "grant") for p in CHOOSABLE]
    assert all(e["evidence"]["gpc"] is True for e in latest)


def test_consent_mode_gets_default_denied_then_updates(shop, context):
    context.add_init_script(GTAG_RECORDER)
    page = context.new_page()
    page.goto(shop.page())
    page.locator(BANNER).wait_for()
    calls = page.evaluate("gtagCalls")
    assert calls == [["consent", "default", consent_mode("denied")]], "default, then nothing until a decision"

    button(page, "preferences").click()
    page.get_by_role("switch", name="Analytics").check()
    decide(page, "save")
    assert page.evaluate("gtagCalls")[-1] == [
        "consent", "update", consent_mode("denied", analytics_storage="granted")]

    page.evaluate("ConsentSDK.show()")
    decide(page, "accept-all")
    assert page.evaluate("gtagCalls")[-1] == ["consent", "update", consent_mode("granted")]

    page.reload()
    ready(page)
    assert page.evaluate("gtagCalls") == [["consent", "default", consent_mode("denied")],
                                          ["consent", "update", consent_mode("granted")]]

    page.evaluate("ConsentSDK.withdrawAll()")
    assert page.evaluate("gtagCalls")[-1] == ["consent", "update", consent_mode("denied")]
