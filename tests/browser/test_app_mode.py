"""A page inside an app's WebView acting for the signed-in account: data-subject-token (or
ConsentSDK.identify), the account's state from the server, records under the account, and the
app told of every change (consentchange, window.webkit.messageHandlers, an Android interface)."""

from __future__ import annotations

import uuid

import pytest

from tests.browser.pageops import BANNER, CHOOSABLE, ROOT, allowed, button, decide, ready
from tests.builders import decision

pytestmark = pytest.mark.browser

LOCATION = {"kind": "device_permission", "title": {"en": "Location", "zh-CN": "位置信息"}}
# What the app's native side would install before the page runs: iOS and Android message hooks
# that record what they are sent, and a listener for the page's own event.
NATIVE = """window.sent = {ios: [], android: [], events: []};
window.webkit = {messageHandlers: {consent: {postMessage: m => sent.ios.push(m)}}};
window.ConsentAndroid = {postMessage: s => sent.android.push(JSON.parse(s))};
window.addEventListener('consentchange', e => sent.events.push(e.detail));"""


class AppShop:
    """A shop with an app: a device permission in its catalog and a subject-token key."""

    def __init__(self, shop):
        self.shop = shop
        self.tenant = shop.tenant
        self.tenant.define({"location": LOCATION})
        issued = self.tenant.subject_token_key("HS256")
        self.tenant.stk_kid, self.tenant.stk_secret = issued["kid"], issued["secret"]

    def token(self, subject: str) -> str:
        """What the shop's backend signs for its signed-in user and hands to the WebView."""
        return self.tenant.subject_token(subject)

    def decide_in_app(self, subject: str, **granted: bool) -> None:
        """The user's choices in the app's native settings screen, recorded by the app."""
        self.tenant.record(subject, *(decision(p, g) for p, g in granted.items()), token=self.token(subject),
                           expect=201)

    def page(self, subject: str | None = None, body: str = "") -> str:
        site = self.shop.site
        token = f' data-subject-token="{self.token(subject)}"' if subject else ""
        embed = (f'<script src="{site.api}/sdk/consent.js" data-key="{site.pk}" '
                 f'data-api="{site.api}"{token} async></script>')
        return self.shop.page(body, embed=embed)


@pytest.fixture(scope="module")
def app_shop(make_shop) -> AppShop:
    return AppShop(make_shop("Shop with an app"))


@pytest.fixture
def webview(context):
    context.add_init_script(NATIVE)
    return context.new_page()


def account() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


def settled(page) -> None:
    """The account's state is applied (one change event) and the interface drawn after it."""
    page.wait_for_function("sent.events.length > 0")
    page.evaluate("() => new Promise(resolve => setTimeout(resolve))")


def decide_for(page, user: str, action: str) -> dict:
    """Click a banner button; wait until the server recorded it under the account."""
    with page.expect_response(lambda r: r.request.method == "POST"
                              and r.url.endswith(f"/v1/subjects/{user}/consents")) as answer:
        button(page, action).click()
    assert answer.value.status == 201, answer.value.text()
    return answer.value.json()


def web_posts(requests) -> list[str]:
    return [url for method, url in requests if method == "POST"]


def test_no_banner_when_the_app_already_decided_every_shown_purpose(app_shop, webview):
    user = account()
    app_shop.decide_in_app(user, analytics=True, ads=False, sharing=False, location=True)
    requests = []
    webview.on("request", lambda r: requests.append((r.method, r.url)))
    with webview.expect_response(lambda r: r.url.endswith(f"/v1/subjects/{user}/consents")) as read:
        webview.goto(app_shop.page(user))
    assert read.value.status == 200
    assert read.value.headers["access-control-allow-origin"] == app_shop.shop.site.origin
    settled(webview)
    assert webview.locator(ROOT).count() == 0
    assert allowed(webview, ("necessary", "analytics", "ads", "sharing", "location")) == {
        "necessary": True, "analytics": True, "ads": False, "sharing": False, "location": True}
    assert webview.evaluate("ConsentSDK.subjectId()") == user
    assert web_posts(requests) == []
    assert not any(c["name"] == "consent_sid" for c in webview.context.cookies()), "no anonymous id"
    assert webview.evaluate("sent.events")[-1]["subject_id"] == user


def test_an_account_the_server_never_saw_is_asked_and_recorded_under_the_account(app_shop, webview):
    user = account()
    webview.goto(app_shop.page(user))
    webview.locator(BANNER).wait_for()
    answer = decide_for(webview, user, "reject-all")
    assert answer["state"]["subject_id"] == user
    history = app_shop.tenant.history(user)
    assert sorted((e["purpose"], e["action"]) for e in history) == [(p, "deny") for p in CHOOSABLE]
    assert {e["source"]["channel"] for e in history} == {"web"}

    # The native side heard of the change, as the page did.
    change = {"allowed": {"necessary": True, "analytics": False, "ads": False, "sharing": False,
                          "location": False}, "subject_id": user}
    assert webview.evaluate("sent.ios")[-1] == change
    assert webview.evaluate("sent.android")[-1] == change
    assert webview.evaluate("sent.events")[-1] == change

    # Decided on the server now: the same account on another visit sees no banner.
    webview.goto(app_shop.page(user))
    settled(webview)
    assert webview.locator(ROOT).count() == 0


def test_a_decision_the_app_has_not_made_for_every_shown_purpose_still_asks(app_shop, webview):
    user = account()
    app_shop.decide_in_app(user, analytics=True, location=True)
    webview.goto(app_shop.page(user))
    webview.locator(BANNER).wait_for()
    assert allowed(webview, ("analytics", "ads", "location")) == {"analytics": True, "ads": False, "location": True}
    decide_for(webview, user, "accept-all")
    assert app_shop.tenant.state(user)["purposes"]["ads"]["status"] == "granted"


def test_withdraw_all_in_app_mode_leaves_the_apps_device_permissions_alone(app_shop, webview):
    user = account()
    app_shop.decide_in_app(user, analytics=True, ads=True, sharing=True, location=True)
    requests = []
    webview.on("request", lambda r: requests.append((r.method, r.url)))
    webview.goto(app_shop.page(user))
    settled(webview)
    events = webview.evaluate("ConsentSDK.withdrawAll().then(answer => answer.events)")
    assert sorted((e["purpose"], e["action"]) for e in events) == [(p, "withdraw") for p in CHOOSABLE]
    assert web_posts(requests) == [f"{app_shop.shop.site.api}/v1/subjects/{user}/consents"], "never withdraw-all"
    state = app_shop.tenant.state(user)["purposes"]
    assert state["location"]["status"] == "granted"
    assert {p: state[p]["status"] for p in CHOOSABLE} == {p: "withdrawn" for p in CHOOSABLE}
    assert webview.evaluate("sent.ios")[-1]["allowed"]["location"] is True


def test_identify_switches_an_anonymous_page_to_the_signed_in_account(app_shop, webview):
    user = account()
    app_shop.decide_in_app(user, analytics=False, ads=True, sharing=False)
    webview.goto(app_shop.page())
    webview.locator(BANNER).wait_for()
    assert webview.evaluate("ConsentSDK.subjectId()").startswith("anon-")
    webview.evaluate("token => ConsentSDK.identify(token)", app_shop.token(user))
    assert webview.locator(ROOT).count() == 0
    assert webview.evaluate("ConsentSDK.subjectId()") == user
    assert allowed(webview, ("analytics", "ads")) == {"analytics": False, "ads": True}
    assert webview.evaluate("sent.ios")[-1]["subject_id"] == user


def test_a_token_the_server_refuses_leaves_the_page_working_anonymously(app_shop, webview):
    expired = app_shop.tenant.subject_token("user-x", iat=1_000_000_000)
    site = app_shop.shop.site
    embed = (f'<script src="{site.api}/sdk/consent.js" data-key="{site.pk}" '
             f'data-api="{site.api}" data-subject-token="{expired}" async></script>')
    webview.goto(app_shop.shop.page(embed=embed))
    webview.locator(BANNER).wait_for()
    answer = decide(webview, "accept-all")
    assert answer["state"]["subject_id"].startswith("anon-")
    app_shop.tenant.get("/v1/subjects/user-x/history", expect=404)  # nothing recorded under the account
    ready(webview)
