"""What every page loads is consent.js alone; the preferences panel and app mode are parts loaded
from beside it only when a page needs them."""

from __future__ import annotations

import pytest

from tests.browser.pageops import BANNER, PANEL, ROOT, button, decide, ready, switches

pytestmark = pytest.mark.browser

PART = "**/sdk/consent-panel.js*"


def scripts_from(requests, api: str) -> list[str]:
    return [url.split("?")[0].removeprefix(api) for kind, url in requests
            if kind == "script" and url.startswith(api)]


def test_a_page_loads_no_part_until_the_panel_is_opened(shop, page):
    requests = []
    page.on("request", lambda r: requests.append((r.resource_type, r.url)))
    page.goto(shop.page())
    page.locator(BANNER).wait_for()
    assert scripts_from(requests, shop.site.api) == ["/sdk/consent.js"]

    with page.expect_response(lambda r: "/sdk/consent-panel.js?v=" in r.url) as part:
        button(page, "preferences").click()
    assert part.value.status == 200
    assert switches(page) == {"analytics": False, "ads": False, "sharing": False}
    decide(page, "save")

    requests.clear()
    page.reload()
    ready(page)
    assert page.locator(ROOT).count() == 0
    assert scripts_from(requests, shop.site.api) == ["/sdk/consent.js"], "a remembered decision needs no part"
    page.locator("#settings").click()
    assert switches(page) == {"analytics": False, "ads": False, "sharing": False}


def test_a_panel_that_arrives_after_the_visitor_decided_stays_closed(shop, page):
    held = []
    page.route(PART, lambda route: held.append(route))  # the part's answer waits until the test lets it through
    page.goto(shop.page())
    with page.expect_request(lambda r: "/sdk/consent-panel.js" in r.url):
        button(page, "preferences").click()
    decide(page, "accept-all")  # still on the banner: the panel has not arrived
    with page.expect_response(lambda r: "/sdk/consent-panel.js" in r.url):
        held[0].continue_()
    page.evaluate("() => new Promise(resolve => setTimeout(resolve))")
    assert page.locator(ROOT).count() == 0
    page.unroute(PART)
    page.evaluate("ConsentSDK.show()")
    page.locator(PANEL).wait_for()


def test_a_part_that_fails_to_load_is_asked_for_again(shop, page):
    page.route(PART, lambda route: route.abort())
    page.goto(shop.page())
    with page.expect_event("requestfailed", lambda r: "/sdk/consent-panel.js" in r.url):
        button(page, "preferences").click()
    page.evaluate("() => new Promise(resolve => setTimeout(resolve))")
    assert page.locator(PANEL).count() == 0
    assert page.locator(BANNER).count() == 1, "the banner stays usable"
    page.unroute(PART)
    button(page, "preferences").click()
    page.locator(PANEL).wait_for()
