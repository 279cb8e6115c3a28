"""The privacy center in Debian's chromium against a live `consent-api serve`: a link made through
the API opens it, switches change what the API answers, sensitive purposes wait for their own
confirmation, links work once, a session sees one subject, forms need their CSRF token, and axe-core
(vendored through npm, client_js/node_modules) finds no serious accessibility violation on any page in
either language, at a desktop width or at 320 px."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.browser.pageops import TIMEOUT_MS, axe_violations
from tests.support.api import Api, HttpClient

SUBJECT = "u-browser"


@pytest.fixture(scope="module")
def shop(shared_server):
    return Api(HttpClient(shared_server.url)).new_app_tenant("知行商城")


@pytest.fixture
def subject(shop, request):
    """A fresh subject per test, with two grants made in the app."""
    subject_id = f"{SUBJECT}-{request.node.name[:40]}".replace("[", "-").replace("]", "")
    shop.grant(subject_id, "personalized_push", "marketing_sms")
    return subject_id


def link(shop, subject_id: str) -> str:
    return shop.post(f"/v1/subjects/{subject_id}/privacy-center-links", token=shop.writer,
                     expect=201).get_json()["url"]


def statuses(shop, subject_id: str) -> dict[str, str]:
    body = shop.get(f"/v1/subjects/{subject_id}/consents", token=shop.reader, expect=200).get_json()
    return {k: v["status"] for k, v in body["purposes"].items()}


def open_center(page, shop, subject_id: str, locale: str = "en"):
    page.set_extra_http_headers({"Accept-Language": locale})
    page.goto(link(shop, subject_id))
    page.get_by_role("heading", level=1).wait_for()


def test_switching_a_purpose_off_shows_in_the_api_and_in_the_history_with_a_receipt(page, shop, subject):
    open_center(page, shop, subject)
    assert "/privacy/open/" not in page.url and page.url.endswith("/privacy/")

    switch = page.get_by_role("switch", name="Personalised push notifications")
    assert switch.is_checked()
    switch.uncheck()
    page.locator("[data-action=save]").click()
    page.locator("[data-notice=saved]").wait_for()

    assert statuses(shop, subject)["personalized_push"] == "withdrawn"
    assert not page.get_by_role("switch", name="Personalised push notifications").is_checked()
    history = page.locator("[data-section=history] li")
    assert history.count() == 3
    assert "You turned off “Personalised push notifications” on the website (privacy center)" in history.first.inner_text()
    page.locator("[data-notice=saved] summary").click()
    receipt = page.locator("[data-receipt]").inner_text()
    event = shop.get(f"/v1/subjects/{subject}/history", token=shop.reader, expect=200).get_json()["items"][-1]
    assert receipt.count(".") == 2 and event["action"] == "withdraw"


def test_a_sensitive_purpose_needs_its_separate_confirmation(page, shop, subject):
    open_center(page, shop, subject, "zh-CN")
    page.get_by_role("switch", name="精确位置").check()
    page.locator("[data-action=save]").click()

    confirm = page.locator("[data-action=confirm-separate]")
    confirm.wait_for()
    assert "需要您的单独同意" in page.locator("h1").inner_text()
    assert statuses(shop, subject)["precise_location"] == "not_asked"  # nothing recorded before it

    page.goto(page.url.rsplit("/privacy/", 1)[0] + "/privacy/")  # leaving the step grants nothing
    assert not page.get_by_role("switch", name="精确位置").is_checked()
    assert statuses(shop, subject)["precise_location"] == "not_asked"

    page.get_by_role("switch", name="精确位置").check()
    page.locator("[data-action=save]").click()
    page.locator("[data-action=confirm-separate]").click()
    page.locator("[data-notice=saved]").wait_for()
    assert statuses(shop, subject)["precise_location"] == "granted"
    assert page.get_by_role("switch", name="精确位置").is_checked()


def test_a_used_or_unknown_link_shows_a_clear_page_and_grants_nothing(browser, page, shop, subject):
    url = link(shop, subject)
    page.goto(url)
    page.locator("[data-section=history]").wait_for()

    other = browser.new_context()
    try:
        again = other.new_page()
        answer = again.goto(url)
        assert answer.status == 410
        assert again.locator("h1").inner_text() == "This link can no longer be used"
        assert [c for c in other.cookies() if c["name"] == "consent_privacy"] == []
        assert again.goto(url.rsplit("/", 1)[0] + "/not-a-code").status == 410
        assert again.goto(url.rsplit("/privacy/", 1)[0] + "/privacy/").status == 401
    finally:
        other.close()


def test_the_session_cookie_reads_no_other_subject(page, context, shop, subject):
    shop.grant("someone-else", "location")
    open_center(page, shop, subject)
    cookie = next(c for c in context.cookies() if c["name"] == "consent_privacy")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["path"] == "/privacy"
    assert page.evaluate("document.cookie") == ""

    # the page itself may not even fetch (CSP connect-src 'none'); the browser's cookie jar may
    assert page.evaluate("""async () => { try { await fetch('/v1/subjects/someone-else/consents'); return 'fetched'; }
                                         catch (e) { return 'blocked'; } }""") == "blocked"
    base = page.url.rsplit("/privacy/", 1)[0]
    assert page.request.get(base + "/v1/subjects/someone-else/consents").status == 401
    record = page.request.get(base + "/privacy/record.json?subject_id=someone-else").json()
    assert record["subject_id"] == subject and "location" not in [
        k for k, v in record["consents"]["purposes"].items() if v["allowed"]]


def test_a_form_without_its_csrf_token_is_refused(page, shop, subject):
    open_center(page, shop, subject)
    page.evaluate("document.querySelectorAll('input[name=csrf_token]').forEach(i => i.remove())")
    page.get_by_role("switch", name="Marketing text messages").uncheck()
    with page.expect_response(lambda r: r.url.endswith("/privacy/consents")) as answer:
        page.locator("[data-action=save]").click()
    assert answer.value.status == 403
    assert "This action was refused" in page.locator("h1").inner_text()
    assert statuses(shop, subject)["marketing_sms"] == "granted"


def test_withdraw_all_and_a_request_with_its_deadline(page, shop, subject):
    open_center(page, shop, subject)
    page.locator("[data-action=withdraw-all]").click()
    page.locator("[data-notice=saved]").wait_for()
    assert statuses(shop, subject)["personalized_push"] == statuses(shop, subject)["marketing_sms"] == "withdrawn"

    page.get_by_role("link", name="Make or follow a request").click()
    form = page.locator("form[data-form=request]")
    form.locator("select[name=type]").select_option("copy")
    form.locator("textarea[name=details]").fill("Please send me a copy of my data.")
    form.locator("[data-action=send-request]").click()
    due = page.locator("[data-notice=sent] [data-request-due]")
    made = shop.get(f"/v1/subjects/{subject}/requests", token=shop.reader, expect=200).get_json()["items"]
    assert len(made) == 1 and made[0]["type"] == "copy"
    assert due.get_attribute("datetime") == page.evaluate(
        "d => new Date(new Date(d).getTime() - 1).toLocaleDateString('sv-SE', {timeZone: 'Asia/Shanghai'})",
        made[0]["due_at"])


def test_the_record_downloads_as_json(page, shop, subject):
    open_center(page, shop, subject)
    with page.expect_download() as download:
        page.locator("a[data-action=download-record]").first.click()
    body = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
    assert body["subject_id"] == subject and len(body["events"]) == 2


def test_the_keyboard_reaches_and_moves_every_switch(page, shop, subject):
    open_center(page, shop, subject)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    page.keyboard.press("Enter")
    for _ in range(12):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.getAttribute('role')") == "switch":
            break
    focused = page.evaluate("document.activeElement.id")
    before = page.evaluate("document.activeElement.checked")
    page.keyboard.press("Space")
    assert page.evaluate(f"document.getElementById('{focused}').checked") is not before
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"


def test_nothing_is_loaded_from_another_origin_and_the_csp_is_never_broken(page, shop, subject, shared_server):
    seen, console = [], []
    page.on("request", lambda r: seen.append(r.url))
    page.on("console", lambda m: console.append(m.text))
    open_center(page, shop, subject)
    page.get_by_role("link", name="Make or follow a request").click()
    page.locator("form[data-form=request]").wait_for()
    assert seen and all(u.startswith(shared_server.url) for u in seen), seen
    assert not [m for m in console if "Content Security Policy" in m]


def visit_every_page(page, shop, subject_id: str, locale: str):
    """(name, page) for the home page, the separate-consent step, requests, the record, the
    error page of a used link and the signed-out page."""
    url = link(shop, subject_id)
    page.set_extra_http_headers({"Accept-Language": locale})
    page.goto(url)
    yield "home"
    base = page.url.rsplit("/privacy/", 1)[0]
    page.locator("#p-precise_location").check()
    page.locator("[data-action=save]").click()
    page.locator("[data-action=confirm-separate]").wait_for()
    yield "confirm"
    page.goto(base + "/privacy/requests")
    yield "requests"
    page.goto(base + "/privacy/record")
    yield "record"
    page.locator("[data-action=sign-out]").click()
    page.locator("h1").wait_for()
    yield "signed out"
    page.goto(url)
    yield "used link"


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
@pytest.mark.parametrize("width", [1024, 320])
def test_axe_finds_no_serious_violation_and_nothing_overflows(browser, shop, subject, locale, width):
    context = browser.new_context(viewport={"width": width, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = context.new_page()
        found = {}
        for name in visit_every_page(page, shop, subject, locale):
            assert page.evaluate("document.documentElement.lang") == locale, name
            found[name] = axe_violations(page)
            overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 0, f"{name} scrolls sideways by {overflow}px at {width}px"
        assert found == {name: [] for name in found}
        assert len(found) == 6
    finally:
        context.close()


def test_axe_would_notice_a_switch_without_a_name(page, shop, subject):
    """The check above can fail: a switch stripped of its label is a critical finding."""
    open_center(page, shop, subject)
    page.evaluate("document.querySelector('label[for=p-personalized_push]').remove()")
    assert "label" in {v["id"] for v in axe_violations(page)}
