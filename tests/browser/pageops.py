"""What a visitor does on a shop page, and what the tests read back from it."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

AXE = Path(__file__).resolve().parents[2] / "client_js" / "node_modules" / "axe-core" / "axe.min.js"
# Generous enough for a loaded CI machine; a passing run never waits this long.
TIMEOUT_MS = 10_000
CHOOSABLE = ("ads", "analytics", "sharing")  # the purposes with a switch, sorted
BANNER = "#consent-sdk section"
PANEL = "#consent-sdk [role=dialog]"
ROOT = "#consent-sdk"
SIGNALS = ("ad_storage", "analytics_storage", "ad_user_data", "ad_personalization")

# Chromium's fetch() cannot set Sec-GPC; the page-visible signal is navigator.globalPrivacyControl.
GPC_ON = "Object.defineProperty(navigator, 'globalPrivacyControl', {value: true, configurable: true});"
# A gtag that only records what it is called with, defined before the snippet runs.
GTAG_RECORDER = "window.gtagCalls = []; window.gtag = function () { gtagCalls.push(Array.from(arguments)); };"


def is_decision_post(response) -> bool:
    return response.request.method == "POST" and response.url.endswith("/v1/public/consents")


def button(page, action: str):
    return page.locator(f'{ROOT} [data-consent-action="{action}"]')


def decide(page, action: str) -> dict[str, Any]:
    """Click a banner/panel button and wait until the server has recorded the decision."""
    with page.expect_response(is_decision_post) as answer:
        button(page, action).click()
    response = answer.value
    assert response.status == 201, (response.status, response.text())
    return response.json()


def ready(page) -> None:
    """The snippet has its config (essential purposes are allowed from then on)."""
    page.wait_for_function("window.ConsentSDK && ConsentSDK.has('necessary')")


def wait_until(page, expression: str) -> None:
    """Wait until expression is true in the page, asked through the DevTools protocol. For
    pages whose Content-Security-Policy forbids eval: page.wait_for_function evaluates its
    predicate once that way, but compiles it with eval for every later poll, so under such a
    policy it fails whenever the condition is not true at once (a loaded machine)."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"not true within {TIMEOUT_MS} ms: {expression}"
        page.wait_for_timeout(20)


def subject_id(page) -> str:
    return page.evaluate("ConsentSDK.subjectId()")


def allowed(page, keys=("necessary", "analytics", "ads", "sharing")) -> dict[str, bool]:
    return page.evaluate("keys => Object.fromEntries(keys.map(k => [k, ConsentSDK.has(k)]))", list(keys))


def switches(page) -> dict[str, bool]:
    """The open panel's switches (the panel loads on demand: this waits for it)."""
    page.locator(PANEL).wait_for()
    return page.evaluate(
        "() => Object.fromEntries([...document.querySelectorAll('#consent-sdk [role=switch]')]"
        ".map(s => [s.name, s.checked]))")


def consent_cookie(context) -> str:
    return next((c["value"] for c in context.cookies() if c["name"] == "consent"), "")


def focused(page) -> dict[str, Any]:
    return page.evaluate("""() => { const e = document.activeElement; return {
        tag: e.tagName, action: e.getAttribute('data-consent-action'), id: e.id, name: e.name || null,
        inDialog: !!e.closest('[role=dialog]'), inBanner: !!e.closest('#consent-sdk section') }; }""")


def tab_to(page, predicate, limit: int = 15) -> list[dict[str, Any]]:
    """Press Tab until the focused element satisfies predicate; returns the path taken."""
    path = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        path.append(focused(page))
        if predicate(path[-1]):
            return path
    raise AssertionError(f"Tab never reached the target; focus went through {path}")


def consent_mode(all_value: str, **granted: str) -> dict[str, str]:
    return {s: granted.get(s, all_value) for s in SIGNALS}


def axe_violations(page) -> list[dict]:
    """Serious and critical axe-core findings on the page as it is now. axe is evaluated through
    the DevTools protocol, so the page's CSP (no inline or foreign script) stays as it is."""
    if not AXE.exists():
        raise RuntimeError(f"{AXE} is missing: run `npm ci --prefix client_js` (axe-core is a devDependency)")
    page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate("async () => JSON.stringify(await axe.run(document, {resultTypes: ['violations']}))")
    return [{"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:3]}
            for v in json.loads(result)["violations"] if v["impact"] in ("serious", "critical")]
