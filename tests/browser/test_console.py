"""The console in Debian's chromium against a live `consent-api serve`: every check of the issue's
"done when" list, then accessibility (axe-core: no serious or critical finding on any page, in
both languages, at laptop and tablet widths, with nothing wider than the window) and the keyboard.

    sign in with an admin key and with an audit key (no edit controls; a forged POST is 403)
    define a purpose in the console and see it in GET /v1/purposes
    look up a subject and see its history and a verified chain
    erase a subject after the confirmation
    download an export and its manifest that `consent-api verify-export` accepts
    the overview chart's numbers equal GET /v1/stats and a count over the export
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest

from consent_api.domain import daily
from consent_api.domain.clock import parse_ts
from tests.browser.pageops import axe_violations
from tests.support.api import Api, HttpClient

PAGES = ["/console/", "/console/subjects", "/console/subjects/u-1", "/console/purposes", "/console/policies",
         "/console/vendors", "/console/keys", "/console/audit", "/console/requests", "/console/webhooks"]


@pytest.fixture
def shop(shared_server):
    """A mobile app's tenant on the live server, with a few decisions from three channels."""
    tenant = Api(HttpClient(shared_server.url)).new_app_tenant()
    tenant.grant("u-1", "personalized_push", "location")
    tenant.refuse("u-2", "personalized_push", channel="web")
    tenant.grant("u-3", "personalized_push", "marketing_sms", channel="android")
    tenant.refuse("u-3", "marketing_sms", channel="android")  # a withdrawal
    tenant.prompt("u-1", "analytics_cookies")
    hook = tenant.post("/v1/webhooks", {"url": "https://93.184.216.34/hooks", "description": "CRM"},
                       expect=201).get_json()
    tenant.patch(f"/v1/webhooks/{hook['id']}", {"status": "disabled"}, expect=200)  # nothing to send from here
    opened = tenant.post("/v1/subjects/u-9/requests", {"type": "copy"}, token=tenant.writer, expect=201).get_json()
    tenant.detail_pages = [f"/console/webhooks/{hook['id']}", f"/console/requests/{opened['id']}"]
    return tenant


def sign_in(page, server, key: str, locale: str = "en") -> None:
    page.set_extra_http_headers({"Accept-Language": locale})
    page.goto(server.url + "/console/sign-in")
    page.fill("input[name=api_key]", key)
    page.click("[data-action=sign-in]")
    page.locator("[data-action=sign-out]").wait_for()


def test_an_admin_signs_in_and_out_and_the_session_ends_on_the_server(page, context, shared_server, shop):
    sign_in(page, shared_server, shop.admin)
    assert page.url.endswith("/console/")
    cookie = next(c for c in context.cookies() if c["name"] == "consent_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/console"
    assert shop.admin not in json.dumps(context.storage_state())  # not in cookies nor storage
    page.locator("a[href='/console/purposes']").click()
    assert page.locator("form[data-form=purpose]").count() == 1

    page.click("[data-action=sign-out]")
    page.wait_for_url("**/console/sign-in?signed_out=1")
    context.add_cookies([cookie])  # the old cookie, replayed
    page.goto(shared_server.url + "/console/purposes")
    assert page.url.endswith("/console/sign-in")


def test_an_audit_key_sees_no_edit_control_and_its_forged_post_is_refused(page, shared_server, shop):
    sign_in(page, shared_server, shop.auditor)
    for path in PAGES + shop.detail_pages:
        response = page.goto(shared_server.url + path)
        if path.startswith(("/console/keys", "/console/webhooks")):
            assert response.status == 403
            continue
        forms = page.eval_on_selector_all("form[method=post]", "fs => fs.map(f => f.dataset.form)")
        assert forms == ["sign-out"], (path, forms)
        assert page.locator("[data-action=erase], [data-action=save-purpose], input[name=confirm]").count() == 0

    statuses = []
    for with_token in (False, True):
        page.goto(shared_server.url + "/console/purposes")
        with page.expect_navigation() as answer:
            page.evaluate("""withToken => {
                const form = Object.assign(document.createElement('form'), {method: 'post', action: '/console/purposes'});
                const fields = {key: 'spy', kind: 'marketing', title_en: 'Spy', 'title_zh-CN': '间谍'};
                if (withToken) fields.csrf_token = document.querySelector('input[name=csrf_token]').value;
                for (const [name, value] of Object.entries(fields))
                    form.append(Object.assign(document.createElement('input'), {type: 'hidden', name, value}));
                document.body.append(form);
                form.submit();
            }""", with_token)
        statuses.append(answer.value.status)
    assert statuses == [403, 403]  # without the session's token; with it, but without the scope
    assert "spy" not in [p["key"] for p in shop.get("/v1/purposes").get_json()["items"]]


def test_a_purpose_defined_in_the_console_is_in_the_api(page, shared_server, shop):
    sign_in(page, shared_server, shop.admin)
    page.goto(shared_server.url + "/console/purposes")
    form = page.locator("form[data-form=purpose]")
    form.locator("input[name=key]").fill("newsletter")
    form.locator("select[name=kind]").select_option("marketing")
    form.locator("input[name=title_en]").fill("Monthly newsletter")
    form.locator("input[name='title_zh-CN']").fill("每月电子报")
    form.locator("[data-action=save-purpose]").click()
    page.locator("[data-notice=saved]").wait_for()

    listed = {p["key"]: p for p in shop.get("/v1/purposes").get_json()["items"]}
    assert listed["newsletter"]["title"] == {"en": "Monthly newsletter", "zh-CN": "每月电子报"}
    assert listed["newsletter"]["kind"] == "marketing"


def test_a_subjects_history_shows_with_its_verified_chain(page, shared_server, shop):
    sign_in(page, shared_server, shop.auditor)
    page.goto(shared_server.url + "/console/subjects")
    page.fill("input[name=id]", "u-1")
    page.keyboard.press("Enter")
    page.wait_for_url("**/console/subjects/u-1")

    history = shop.history("u-1")
    shown = page.eval_on_selector_all("[data-event-id]", "rows => rows.map(r => r.dataset.eventId)")
    assert shown == [e["event_id"] for e in history] and len(shown) == 3
    assert page.locator("[data-chain=verified]").count() == 1 and page.locator("[data-chain=broken]").count() == 0
    hashes = page.eval_on_selector_all("[data-event-id] [data-hash]", "cs => cs.map(c => c.textContent)")
    assert hashes == [e["hash"] for e in history]


def test_a_subject_is_erased_after_typing_its_id(page, shared_server, shop):
    sign_in(page, shared_server, shop.admin)
    page.goto(shared_server.url + "/console/subjects/u-2")
    form = page.locator("form[data-form=erase]")
    form.locator("input[name=confirm]").fill("u-3")
    form.locator("[data-action=erase]").click()
    page.locator("#erase-error").wait_for()
    assert shop.get("/v1/subjects/u-2/consents").status_code == 200

    page.locator("form[data-form=erase] input[name=confirm]").fill("u-2")
    page.locator("form[data-form=erase] [data-action=erase]").click()
    page.locator("[data-notice=erased]").wait_for()
    assert shop.get("/v1/subjects/u-2/consents").status_code == 404
    exported = [json.loads(line) for line in shop.export().splitlines()]
    assert [e["action"] for e in exported if e["subject_id"] is None][-1] == "erase"


def test_the_downloaded_export_and_manifest_verify_offline(page, shared_server, shop, tmp_path):
    sign_in(page, shared_server, shop.auditor)
    page.goto(shared_server.url + "/console/audit")
    page.select_option("select[name=purpose]", "personalized_push")
    page.click("form[data-form=audit-filters] button")
    page.wait_for_url("**purpose=personalized_push**")
    files = {}
    for kind in ("ndjson", "manifest", "jwks"):
        with page.expect_download() as download:
            page.click(f"a[data-download={kind}]")
        files[kind] = tmp_path / download.value.suggested_filename
        download.value.save_as(files[kind])

    checked = subprocess.run([sys.executable, "-m", "consent_api.cli", "verify-export", str(files["ndjson"]),
                              "--manifest", str(files["manifest"]), "--jwks", str(files["jwks"])],
                             capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    events = [json.loads(line) for line in files["ndjson"].read_text().splitlines()]
    assert len(events) == 3 and {e["purpose"] for e in events} == {"personalized_push"}


def test_the_overview_charts_numbers_equal_the_stats_api_and_a_count_over_the_export(page, shared_server, shop):
    sign_in(page, shared_server, shop.auditor)
    page.goto(shared_server.url + "/console/?days=7")
    page.wait_for_function("window.consoleCharts && window.consoleCharts['opt-in-rate']")
    drawn = page.evaluate("""() => Object.fromEntries(Object.entries(window.consoleCharts).map(
        ([k, u]) => [k, {labels: u.series.slice(1).map(s => s.label), data: u.data}]))""")
    cells = page.evaluate("""() => Object.fromEntries([...document.querySelectorAll(
        'table[data-table=opt-in-rate] td[data-grants]')].map(td => [
        td.closest('tr').dataset.date + ' ' + td.closest('table').querySelectorAll('thead th')[td.cellIndex].dataset.series,
        [Number(td.dataset.grants), Number(td.dataset.decisions)]]))""")

    stats = shop.get("/v1/stats", query={"since": min(k.split()[0] for k in cells)}, token=shop.auditor).get_json()
    today = stats["days"][-1]["date"]
    api = {f"{r['date']} {r['purpose']}": [r["grants"], r["grants"] + r["denies"] + r["withdrawals"]]
           for r in stats["days"] if f"{r['date']} {r['purpose']}" in cells}
    assert cells == api
    export = [json.loads(line) for line in shop.export().splitlines()]
    counted = Counter((daily.day_of(parse_ts(e["recorded_at"])), e["purpose"], e["action"]) for e in export)
    for key, (grants, decided) in cells.items():
        day, purpose = key.split()
        assert grants == counted[(day, purpose, "grant")]
        assert decided == sum(counted[(day, purpose, a)] for a in ("grant", "deny", "withdraw"))
    assert cells[f"{today} personalized_push"] == [2, 3] and cells[f"{today} marketing_sms"] == [1, 2]

    # the chart is drawn from exactly those numbers: rate = grants / decisions, per purpose and day
    push = drawn["opt-in-rate"]["data"][1 + _series_index(page, "opt-in-rate", "personalized_push")]
    assert push[-1] == round(100 * 2 / 3, 1)
    channels = drawn["decisions-by-channel"]
    by_channel = {label: values[-1] for label, values in zip(channels["labels"], channels["data"][1:], strict=True)}
    assert by_channel["iOS"] == stats_channel(stats, today, "ios") and by_channel["Web"] == stats_channel(stats, today, "web")


def _series_index(page, chart: str, key: str) -> int:
    keys = page.eval_on_selector_all(f"table[data-table={chart}] th[data-series]", "ths => ths.map(t => t.dataset.series)")
    return keys.index(key)


def stats_channel(stats: dict, day: str, channel: str) -> int:
    return sum(r["channels"][channel] for r in stats["days"] if r["date"] == day)


def test_signing_in_and_moving_around_works_with_the_keyboard_alone(page, shared_server, shop):
    page.goto(shared_server.url + "/console/sign-in")
    page.keyboard.press("Tab")  # the skip link first
    assert page.evaluate("document.activeElement.classList.contains('skip-link')")
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.name") == "api_key":
            break
    page.keyboard.type(shop.admin)
    page.keyboard.press("Enter")
    page.locator("[data-action=sign-out]").wait_for()
    for _ in range(20):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.getAttribute('href')") == "/console/subjects":
            break
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "solid"  # focus is visible
    page.keyboard.press("Enter")
    page.wait_for_url("**/console/subjects")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")  # past the skip link to the language switch, then on
    page.locator("input[name=id]").focus()
    page.keyboard.type("u-1")
    page.keyboard.press("Enter")
    page.wait_for_url("**/console/subjects/u-1")


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
@pytest.mark.parametrize("width", [1366, 820])
def test_no_serious_accessibility_finding_and_nothing_wider_than_the_window(browser, shared_server, shop, locale, width):
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    try:
        sign_in(page, shared_server, shop.admin, locale)
        found = {}
        for path in PAGES + shop.detail_pages:
            page.goto(shared_server.url + path)
            assert page.evaluate("document.documentElement.lang") == locale
            if path == "/console/":
                page.wait_for_function("window.consoleCharts && window.consoleCharts['opt-in-rate']")
            found[path] = axe_violations(page)
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, (path, overflow)
        assert {p: v for p, v in found.items() if v} == {}
    finally:
        context.close()


def test_axe_would_notice_a_control_without_a_name(page, shared_server, shop):
    sign_in(page, shared_server, shop.admin)
    page.goto(shared_server.url + "/console/purposes")
    page.evaluate("document.querySelector('main').append(document.createElement('button'))")
    assert "button-name" in {v["id"] for v in axe_violations(page)}
