"""The one-line embed with inlined config, and re-consent after a material policy change."""

from __future__ import annotations

import pytest

from tests.browser.pageops import (
    BANNER,
    CHOOSABLE,
    ROOT,
    TIMEOUT_MS,
    allowed,
    button,
    decide,
    ready,
    subject_id,
    switches,
)
from tests.builders import POLICY

pytestmark = pytest.mark.browser


def test_inlined_config_embed_makes_no_config_request(shop, page):
    requests = []
    page.on("request", lambda r: requests.append((r.method, r.url)))
    page.goto(shop.page(inline=True))  # <script src=".../sdk/consent.js?key=pk_..." async>
    page.locator(BANNER).wait_for()
    answer = decide(page, "accept-all")
    assert answer["state"]["purposes"]["analytics"]["allowed"] is True
    config_calls = [url for _, url in requests if "/v1/public/config" in url]
    assert config_calls == [], f"the inlined config must save the config request: {config_calls}"
    api_calls = [(m, url.split("?")[0]) for m, url in requests if url.startswith(shop.site.api)]
    assert api_calls == [("GET", f"{shop.site.api}/sdk/consent.js"),
                         ("POST", f"{shop.site.api}/v1/public/consents")]
    assert sorted(shop.tenant.decisions(subject_id(page))) == [(p, "grant") for p in CHOOSABLE]


def test_config_request_is_made_without_the_inlined_config(shop, page):
    """The counterpart: the plain embed asks /v1/public/config once, cross-origin, with CORS."""
    with page.expect_response(lambda r: "/v1/public/config" in r.url) as config:
        page.goto(shop.page())
    assert config.value.status == 200
    assert config.value.headers["access-control-allow-origin"] == shop.site.origin
    page.locator(BANNER).wait_for()


def returning_visitor(browser, state):
    """The same visitor on a later day: cookies kept, HTTP cache gone."""
    context = browser.new_context(storage_state=state)
    context.set_default_timeout(TIMEOUT_MS)
    return context


def test_material_policy_published_after_the_decision_asks_again(make_shop, browser, context, page):
    shop = make_shop("Re-consent shop")
    page.goto(shop.page(inline=True))
    decide(page, "accept-all")
    early = subject_id(page)
    early_state = context.storage_state()

    shop.tenant.policy("2026-02", material=True, effective_at=None)
    assert shop.tenant.state(early)["needs_reconsent"] is True

    later = browser.new_context()
    try:
        late_page = later.new_page()
        late_page.goto(shop.page(inline=True))
        decide(late_page, "accept-all")  # decided under the material 2026-02
        late_state = later.storage_state()
    finally:
        later.close()

    # A non-material change after that: asks nobody who decided under 2026-02, but still asks
    # the visitor whose decision predates the material 2026-02.
    shop.tenant.policy("2026-03", material=False, effective_at=None)
    for state, asked in ((early_state, True), (late_state, False)):
        ctx = returning_visitor(browser, state)
        try:
            again = ctx.new_page()
            again.goto(shop.page(inline=True))
            ready(again)
            if not asked:
                assert again.locator(ROOT).count() == 0
                assert allowed(again)["ads"] is True
                continue
            banner = again.locator(BANNER)
            banner.wait_for()
            assert "Our privacy policy has changed" in banner.inner_text()
            assert allowed(again)["ads"] is False, "a stale grant is not used"
            button(again, "preferences").click()
            assert switches(again) == {"analytics": False, "ads": False, "sharing": False}
            again.get_by_role("switch", name="Analytics").check()
            decide(again, "save")
            latest = shop.tenant.history(early)[3:]
            assert {e["policy_version"] for e in latest} == {"2026-03"}
            assert shop.tenant.state(early)["needs_reconsent"] is False
            again.reload()
            ready(again)
            assert again.locator(ROOT).count() == 0
        finally:
            ctx.close()
    assert {e["policy_version"] for e in shop.tenant.history(early)[:3]} == {POLICY}
