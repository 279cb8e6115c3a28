"""Simplified Chinese, picked three ways, and a visitor who uses only the keyboard."""

from __future__ import annotations

import pytest

from tests.browser.pageops import (
    BANNER,
    PANEL,
    ROOT,
    TIMEOUT_MS,
    allowed,
    button,
    decide,
    focused,
    subject_id,
    switches,
    tab_to,
)

pytestmark = pytest.mark.browser

ZH_LABELS = {"accept-all": "全部接受", "reject-all": "全部拒绝", "preferences": "偏好设置"}


@pytest.mark.parametrize("how", ["data-locale", "html-lang", "navigator-languages"])
def test_zh_cn_texts(shop, browser, how):
    context = browser.new_context(locale="zh-CN" if how == "navigator-languages" else "en-US")
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = context.new_page()
        if how == "data-locale":
            url = shop.page(lang="en", locale="zh-CN")
        elif how == "html-lang":
            url = shop.page(lang="zh")
        else:
            url = shop.page(lang="")
        page.goto(url)
        page.locator(BANNER).wait_for()
        assert page.locator(ROOT).get_attribute("lang") == "zh-CN"
        assert page.locator("#consent-sdk-title").inner_text() == "您的隐私选择"
        assert {a: button(page, a).inner_text() for a in ZH_LABELS} == ZH_LABELS
        assert "隐私政策" in page.locator(BANNER).inner_text()

        button(page, "preferences").click()
        panel = page.locator(PANEL).inner_text()
        for text in ("统计分析", "个性化广告", "与合作方共享", "必要 Cookie", "始终开启", "第三方服务"):
            assert text in panel
        assert button(page, "save").inner_text() == "保存"
        page.get_by_role("switch", name="统计分析").check()
        decide(page, "save")
        history = shop.tenant.history(subject_id(page))
        assert {e["locale"] for e in history} == {"zh-CN"}
    finally:
        context.close()


def test_keyboard_only_tab_reaches_the_buttons_and_enter_accepts(shop, page):
    page.goto(shop.page())
    page.locator(BANNER).wait_for()
    path = tab_to(page, lambda f: f["action"] == "accept-all")
    assert all(step["inBanner"] for step in path), f"the banner comes first in Tab order: {path}"
    with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith("/v1/public/consents")):
        page.keyboard.press("Enter")
    assert page.locator(ROOT).count() == 0
    assert allowed(page)["analytics"] is True
    assert sorted(shop.tenant.decisions(subject_id(page))) == [("ads", "grant"), ("analytics", "grant"),
                                                        ("sharing", "grant")]


def test_keyboard_only_preferences_trap_escape_and_save(shop, page):
    page.goto(shop.page())
    page.locator(BANNER).wait_for()
    tab_to(page, lambda f: f["action"] == "preferences")
    page.keyboard.press("Enter")
    page.locator(PANEL).wait_for()
    assert focused(page)["inDialog"], "focus moves into the panel"

    # Tab and Shift+Tab cycle inside the modal panel.
    for key in ["Tab"] * 14 + ["Shift+Tab"] * 14:
        page.keyboard.press(key)
        assert focused(page)["inDialog"], f"focus left the panel after {key}: {focused(page)}"

    # Esc closes the panel (nothing decided: back to the banner) and focus returns to the opener.
    page.keyboard.press("Escape")
    assert page.locator(PANEL).count() == 0
    assert focused(page)["action"] == "preferences"

    page.keyboard.press("Enter")
    page.locator(PANEL).wait_for()
    tab_to(page, lambda f: f["name"] == "analytics")
    page.keyboard.press("Space")
    assert switches(page)["analytics"] is True
    tab_to(page, lambda f: f["action"] == "save")
    with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith("/v1/public/consents")):
        page.keyboard.press("Enter")
    assert allowed(page) == {"necessary": True, "analytics": True, "ads": False, "sharing": False}

    # Reopened from the page's own settings button: Esc closes and focus goes back to it.
    page.focus("#settings")
    page.keyboard.press("Enter")
    page.locator(PANEL).wait_for()
    assert focused(page)["inDialog"]
    page.keyboard.press("Escape")
    assert page.locator(ROOT).count() == 0
    assert focused(page)["id"] == "settings"
