"""A page whose Content-Security-Policy header has no 'unsafe-inline': the snippet styles itself and
loads its parts with its own tag's nonce, a parked script runs with the nonce of its own tag, and
a parked script without one stays blocked (the snippet never lends its nonce)."""

from __future__ import annotations

import uuid

import pytest

from tests.browser.pageops import BANNER, PANEL, ROOT, button, decide, switches, wait_until

pytestmark = pytest.mark.browser

NONCE = "Rk9STkVWRVJTQU1FMTIz"
CSP = f"script-src 'self' 'nonce-{NONCE}'; style-src 'self' 'nonce-{NONCE}'"
ACCENT = "rgb(11, 87, 208)"  # --consent-accent
# Every violation the page sees, recorded before any page script runs.
WATCH = """window.violations = [];
document.addEventListener('securitypolicyviolation',
    e => violations.push(e.effectiveDirective + ' ' + e.blockedURI));"""
PARKED = f"""
<script type="text/plain" data-consent="analytics" nonce="{NONCE}">log.push('own nonce')</script>
<script type="text/plain" data-consent="analytics" src="/slow.js?ms=0&mark=same-origin"></script>
"""
NO_NONCE = "<script type=\"text/plain\" data-consent=\"analytics\">log.push('no nonce')</script>"


def csp_page(shop, body: str = "", *, tag: str | None = None, csp: str = CSP) -> str:
    """A shop page served with header `csp`, without an inline script or style that lacks the nonce."""
    site = shop.site
    tag = tag or (f'<script src="{site.api}/sdk/consent.js" data-key="{site.pk}" '
                  f'data-api="{site.api}" nonce="{NONCE}" async></script>')
    html = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tea shop</title>
<script nonce="{NONCE}">window.log = [];</script>
{tag}
</head><body><main><h1>Tea shop</h1>
<button type="button" id="settings" data-consent-open>Cookie settings</button>
{body}
</main></body></html>"""
    name = f"csp-{uuid.uuid4().hex[:12]}.html"
    (shop.site.root / name).write_text(html, encoding="utf-8")
    (shop.site.root / f"{name}.headers").write_text(f"Content-Security-Policy: {csp}\n", encoding="utf-8")
    return f"{shop.site.origin}/{name}"


@pytest.fixture
def strict(context):
    """A page that records every CSP violation: events, and reports on the console."""
    context.add_init_script(WATCH)
    page = context.new_page()
    page.console_csp = []
    page.on("console", lambda m: "Content Security Policy" in m.text and page.console_csp.append(m.text))
    return page


def no_violations(page) -> None:
    assert page.evaluate("violations") == []
    assert page.console_csp == []


def styled(page, selector: str) -> dict:
    return page.locator(selector).evaluate(
        "e => { const s = getComputedStyle(e); return {position: s.position, width: s.width}; }")


def test_the_banner_and_panel_work_styled_under_a_strict_csp(shop, strict):
    page = strict
    with page.expect_response(lambda r: r.url.endswith(".html")) as served:
        page.goto(csp_page(shop, PARKED))
    assert served.value.headers["content-security-policy"] == CSP
    page.locator(BANNER).wait_for()
    assert page.evaluate("document.querySelector('script[src*=\"consent.js\"]').getAttribute('nonce')") == "", (
        "the browser hides the nonce attribute under a header CSP")
    assert styled(page, BANNER)["position"] == "fixed"
    assert button(page, "accept-all").evaluate("b => getComputedStyle(b).backgroundColor") == ACCENT

    with page.expect_request(lambda r: "/sdk/consent-panel.js" in r.url):
        button(page, "preferences").click()
    assert styled(page, PANEL)["position"] == "fixed"
    assert styled(page, f"{PANEL} [name=analytics]")["width"] == "44px", "the panel's own style applies"
    assert switches(page) == {"analytics": False, "ads": False, "sharing": False}
    page.get_by_role("switch", name="Analytics").check()
    decide(page, "save")
    wait_until(page, "window.log.length >= 2")
    assert page.evaluate("log") == ["own nonce", "same-origin"]
    assert page.locator(ROOT).count() == 0
    no_violations(page)


def test_a_parked_script_without_a_nonce_stays_blocked(shop, strict):
    page = strict
    page.goto(csp_page(shop, NO_NONCE + PARKED))
    decide(page, "accept-all")
    wait_until(page, "window.log.length >= 2")
    wait_until(page, "violations.length >= 1")
    assert page.evaluate("log") == ["own nonce", "same-origin"]
    assert page.evaluate("violations") == ["script-src-elem inline"], "only the script without a nonce"
    assert page.locator("script[data-consent]").evaluate_all("ss => ss.map(s => s.nonce)") == ["", NONCE, ""]


def test_data_nonce_styles_the_banner_when_the_tag_is_allowed_by_host(shop, strict):
    """A page that allows the consent server by host gives the nonce for styles as data-nonce."""
    page = strict
    site = shop.site
    csp = f"script-src 'self' {site.api} 'nonce-{NONCE}'; style-src 'self' 'nonce-{NONCE}'"
    tag = (f'<script src="{site.api}/sdk/consent.js" data-key="{site.pk}" data-api="{site.api}" '
           f'data-nonce="{NONCE}" async></script>')
    page.goto(csp_page(shop, tag=tag, csp=csp))
    page.locator(BANNER).wait_for()
    assert styled(page, BANNER)["position"] == "fixed"
    button(page, "preferences").click()
    assert styled(page, f"{PANEL} [name=analytics]")["width"] == "44px"
    no_violations(page)
