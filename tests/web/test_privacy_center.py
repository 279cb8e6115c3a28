"""The privacy center through Flask's test client: one-time links, the session bound to one
subject, CSRF on every form, and every change made through the API's own services (events,
receipts, rules). tests/browser/test_privacy_center.py walks the same pages in chromium."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import jwt
import pytest

from consent_api.domain.model import Purpose
from consent_api.web.pages import history

SUBJECT = "u-7"


class Visitor:
    """A browser of the privacy center: its own cookies, the pages it reads, the forms it sends."""

    def __init__(self, app, accept_language: str = "en"):
        self.client = app.test_client()
        self.headers = {"Accept-Language": accept_language}
        self.page = None

    def open(self, url: str):
        response = self.client.get(url.replace("http://localhost", ""), headers=self.headers)
        if response.status_code == 303:
            self.page = self.client.get(response.headers["Location"], headers=self.headers)
        return response

    def get(self, path: str):
        self.page = self.client.get(path, headers=self.headers)
        return self.page

    @property
    def html(self) -> str:
        return self.page.get_data(as_text=True)

    def csrf(self) -> str:
        return re.search(r'name="csrf_token" value="([^"]+)"', self.html).group(1)

    def post(self, path: str, data: dict | list | None = None, *, csrf: bool = True):
        fields = list(data.items()) if isinstance(data, dict) else list(data or [])
        if csrf:
            fields.append(("csrf_token", self.csrf()))
        self.page = self.client.post(path, data=_multi(fields), headers=self.headers)
        return self.page

    def cookie(self) -> str | None:
        found = self.client.get_cookie("consent_privacy", path="/privacy")
        return found.value if found else None


def _multi(fields):
    from werkzeug.datastructures import MultiDict

    return MultiDict(fields)


def link(tenant, subject: str = SUBJECT) -> str:
    return tenant.post(f"/v1/subjects/{subject}/privacy-center-links", token=tenant.writer, expect=201).get_json()["url"]


@pytest.fixture
def shop(app_tenant):
    app_tenant.grant(SUBJECT, "personalized_push", "marketing_sms")
    return app_tenant


@pytest.fixture
def visitor(app, shop):
    v = Visitor(app)
    v.open(link(shop))
    return v


def state(tenant, subject: str = SUBJECT) -> dict:
    return {k: s["status"] for k, s in tenant.get(f"/v1/subjects/{subject}/consents", expect=200).get_json()["purposes"].items()}


def allowed_switches(html: str) -> list[str]:
    return sorted(re.findall(r'name="allow" value="([^"]+)"\s+checked', html))


# --- one-time links -----------------------------------------------------------------------------------

def test_a_link_is_made_with_write_scope_and_lives_ten_minutes(api, shop, clock):
    made = api.post(f"/v1/subjects/{SUBJECT}/privacy-center-links", token=shop.writer, expect=201).get_json()
    assert re.fullmatch(r"http://localhost/privacy/open/[A-Za-z0-9_-]{43}", made["url"])
    assert made["expires_at"] == "2026-03-01T08:10:00.000000Z"
    for token in (shop.reader, shop.auditor, shop.subject_token(SUBJECT)):
        api.post(f"/v1/subjects/{SUBJECT}/privacy-center-links", token=token, expect=403)
    api.post("/v1/subjects/bad id/privacy-center-links", token=shop.writer, expect=422)


def test_the_public_url_setting_names_the_links_host(new_app):
    app = new_app(public_url="https://consent.example.com/")
    from tests.support.api import Api

    tenant = Api(app.test_client()).new_app_tenant()
    assert link(tenant).startswith("https://consent.example.com/privacy/open/")


def test_opening_a_link_sets_the_session_cookie_and_leaves_the_code_behind(app, shop):
    v = Visitor(app)
    url = link(shop)
    opened = v.open(url)

    assert opened.status_code == 303 and opened.headers["Location"] == "/privacy/"
    cookie = next(h for h in opened.headers.getlist("Set-Cookie") if h.startswith("consent_privacy="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/privacy" in cookie
    assert url.rsplit("/", 1)[1] not in cookie
    assert v.page.status_code == 200 and "Your privacy choices" in v.html
    assert allowed_switches(v.html) == ["account", "marketing_sms", "personalized_push"]


def test_the_cookie_is_secure_over_https(app, shop):
    opened = app.test_client().get(link(shop).replace("http://localhost", ""), base_url="https://localhost")
    assert "Secure" in next(h for h in opened.headers.getlist("Set-Cookie") if h.startswith("consent_privacy="))


@pytest.mark.parametrize("how", ["used", "expired", "unknown", "garbage"])
def test_a_used_expired_or_unknown_link_answers_410_and_grants_nothing(app, shop, clock, how):
    url = link(shop)
    if how == "used":
        Visitor(app).open(url)
    elif how == "expired":
        clock.advance(minutes=10)
    elif how == "unknown":
        url = url[:-4] + "AAAA"
    else:
        url = "/privacy/open/" + "x" * 300
    v = Visitor(app, "zh-CN")
    answer = v.open(url)

    assert answer.status_code == 410 and answer.mimetype == "text/html"
    assert "此链接已失效" in answer.get_data(as_text=True)
    assert v.cookie() is None
    assert v.get("/privacy/").status_code == 401


def test_a_failed_link_ends_the_session_the_browser_had(app, shop, visitor):
    assert visitor.get("/privacy/").status_code == 200
    visitor.open("/privacy/open/nope")
    assert visitor.get("/privacy/").status_code == 401


# --- one subject, and only that one ---------------------------------------------------------------------

def test_a_session_reaches_its_own_subject_and_no_other(app, shop, visitor):
    theirs = shop.grant("u-other", "location", "analytics_cookies")["events"]
    for path in ("/privacy/?subject_id=u-other", "/privacy/record?subject_id=u-other",
                 "/privacy/record.json?subject_id=u-other", "/privacy/requests?subject_id=u-other"):
        page = visitor.get(path)
        assert page.status_code == 200
        assert not any(e["event_id"] in visitor.html for e in theirs)
        assert "location" not in allowed_switches(visitor.html)
    record = visitor.get("/privacy/record.json").get_json()
    assert record["subject_id"] == SUBJECT and {e["subject_id"] for e in record["events"]} == {SUBJECT}
    # the cookie is no credential of the API
    assert visitor.client.get("/v1/subjects/u-other/consents").status_code == 401
    assert visitor.client.get(f"/v1/subjects/{SUBJECT}/consents").status_code == 401


def test_another_tenants_link_shows_that_tenants_subject_only(app, shop, new_tenant):
    other = new_tenant("Other shop", roles=True)
    other_link = other.post(f"/v1/subjects/{SUBJECT}/privacy-center-links", token=other.writer,
                            expect=201).get_json()["url"]
    v = Visitor(app)
    v.open(other_link)
    assert "Other shop" in v.html and allowed_switches(v.html) == []


# --- CSRF ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("path", "data"), [
    ("/privacy/consents", {"allow": "personalized_push"}),
    ("/privacy/withdraw-all", {}),
    ("/privacy/requests", {"type": "copy"}),
    ("/privacy/sign-out", {}),
])
def test_forms_without_the_csrf_token_are_refused_and_change_nothing(shop, visitor, path, data):
    before = state(shop)
    refused = visitor.post(path, data, csrf=False)
    assert refused.status_code == 403 and 'data-error="403"' in visitor.html
    forged = visitor.post(path, {**data, "csrf_token": "forged"}, csrf=False)
    assert forged.status_code == 403
    assert state(shop) == before
    assert shop.get("/v1/requests", expect=200).get_json()["items"] == []
    assert visitor.get("/privacy/").status_code == 200  # still signed in


def test_every_form_carries_the_token(visitor):
    for path in ("/privacy/", "/privacy/requests", "/privacy/record"):
        html = visitor.get(path).get_data(as_text=True)
        forms = re.findall(r"<form method=\"post\".*?</form>", html, re.S)
        assert forms and all('name="csrf_token"' in form for form in forms), path


# --- changing consents -----------------------------------------------------------------------------------

def test_switching_a_purpose_off_records_a_withdrawal_with_a_receipt(app, shop, visitor):
    saved = visitor.post("/privacy/consents", {"allow": "marketing_sms"})
    assert saved.status_code == 200 and 'data-notice="saved"' in visitor.html

    assert state(shop)["personalized_push"] == "withdrawn" and state(shop)["marketing_sms"] == "granted"
    event = shop.get(f"/v1/subjects/{SUBJECT}/history", expect=200).get_json()["items"][-1]
    assert (event["action"], event["purpose"], event["source"]["channel"], event["source"]["collection_point"]) == (
        "withdraw", "personalized_push", "web", "privacy_center")
    assert re.fullmatch(r"[0-9a-f]{64}", event["source"]["ui_text_sha256"]) and event["locale"] == "en"
    receipt = re.search(r"data-receipt>([^<]+)<", visitor.html).group(1)
    claims = jwt.decode(receipt, options={"verify_signature": False})
    assert claims["sub"] == SUBJECT and claims["decisions"][0]["event_id"] == event["event_id"]
    assert "You turned off “Personalised push notifications” on the website (privacy center)" in visitor.html


def test_saving_unchanged_switches_records_nothing(shop, visitor):
    before = shop.get(f"/v1/subjects/{SUBJECT}/history", expect=200).get_json()["items"]
    visitor.post("/privacy/consents", [("allow", "marketing_sms"), ("allow", "personalized_push")])
    assert 'data-notice="unchanged"' in visitor.html
    assert shop.get(f"/v1/subjects/{SUBJECT}/history", expect=200).get_json()["items"] == before


def test_a_sensitive_purpose_is_recorded_only_after_its_own_confirmation(shop, visitor):
    asked = visitor.post("/privacy/consents", [("allow", "precise_location"), ("allow", "personalized_push"),
                                               ("allow", "marketing_sms"), ("allow", "location")])
    assert asked.status_code == 200 and 'data-action="confirm-separate"' in visitor.html
    assert 'data-separate="precise_location"' in visitor.html
    assert state(shop)["precise_location"] == "not_asked" and state(shop)["location"] == "not_asked"  # nothing yet

    visitor.post("/privacy/consents", [*re.findall(r'name="(allow|confirmed)" value="([^"]+)"', visitor.html),
                                       ("confirm", "precise_location")])
    assert 'data-notice="saved"' in visitor.html
    assert state(shop)["precise_location"] == "granted" and state(shop)["location"] == "granted"
    event = next(e for e in shop.get(f"/v1/subjects/{SUBJECT}/history", expect=200).get_json()["items"]
                 if e["purpose"] == "precise_location")
    assert event["separate"] is True and event["action"] == "grant"


def test_declining_the_confirmation_saves_the_rest_without_the_sensitive_purpose(shop, visitor):
    visitor.post("/privacy/consents", [("allow", "precise_location"), ("allow", "marketing_sms")])
    visitor.post("/privacy/consents", [*re.findall(r'name="(allow|confirmed)" value="([^"]+)"', visitor.html),
                                       ("decline", "precise_location")])
    assert state(shop)["precise_location"] == "not_asked" and state(shop)["personalized_push"] == "withdrawn"


def test_a_child_cannot_turn_a_purpose_on_here(app, app_tenant):
    app_tenant.record("kid", {"purpose": "marketing_sms", "granted": False}, token=app_tenant.writer,
                      age_band="under_14", expect=201)
    v = Visitor(app, "zh-CN")
    v.open(link(app_tenant, "kid"))
    assert "您未满 14 周岁" in v.html
    refused = v.post("/privacy/consents", {"allow": "personalized_push"})
    assert refused.status_code == 422 and "需要您的父母或其他监护人同意" in v.html
    assert state(app_tenant, "kid")["personalized_push"] == "not_asked"


def test_withdraw_all_takes_back_every_grant_in_one_step(shop, visitor):
    visitor.post("/privacy/withdraw-all")
    assert 'data-notice="saved"' in visitor.html
    assert state(shop)["personalized_push"] == state(shop)["marketing_sms"] == "withdrawn"
    assert state(shop)["account"] == "granted"
    visitor.post("/privacy/withdraw-all")
    assert 'data-notice="unchanged"' in visitor.html


# --- requests, record, sign-out -----------------------------------------------------------------------------

def test_a_request_made_here_shows_its_deadline_and_is_in_the_api(shop, visitor):
    visitor.get("/privacy/requests")
    assert 'data-form="request"' in visitor.html and 'name="details"' in visitor.html
    sent = visitor.client.post("/privacy/requests", data={"type": "delete", "details": "请删除我的收货地址",
                                                           "csrf_token": visitor.csrf()})
    assert sent.status_code == 303
    page = visitor.get(sent.headers["Location"])
    assert page.status_code == 200
    dues = re.findall(r'data-request-due datetime="([0-9-]+)"', visitor.html)
    assert dues and set(dues) == {"2026-03-20"}

    made = shop.get(f"/v1/subjects/{SUBJECT}/requests", expect=200).get_json()["items"]
    assert [(r["type"], r["details"], r["channel"], r["due_at"]) for r in made] == [
        ("delete", "请删除我的收货地址", "web", "2026-03-20T16:00:00.000000Z")]
    event = shop.get(f"/v1/subjects/{SUBJECT}/history", expect=200).get_json()["items"][-1]
    assert event["action"] == "request_opened" and event["actor"]["type"] == "self"


def test_a_bad_request_form_records_nothing(shop, visitor):
    visitor.get("/privacy/requests")
    for data in ({"type": "everything"}, {"type": "copy", "details": "x" * 4001}):
        sent = visitor.client.post("/privacy/requests", data={**data, "csrf_token": visitor.csrf()})
        assert sent.status_code == 303 and "error=" in sent.headers["Location"]
    assert shop.get("/v1/requests", expect=200).get_json()["items"] == []


def test_the_record_downloads_as_json_and_reads_as_a_page(shop, visitor):
    download = visitor.get("/privacy/record.json")
    assert download.mimetype == "application/json"
    assert download.headers["Content-Disposition"] == 'attachment; filename="my-consent-record.json"'
    body = download.get_json()
    assert body["consents"]["purposes"]["personalized_push"]["status"] == "granted"
    assert [e["action"] for e in body["events"]] == ["grant", "grant"] and body["requests"] == []
    page = visitor.get("/privacy/record")
    assert page.status_code == 200 and 'data-section="history"' in visitor.html and SUBJECT in visitor.html


def test_signing_out_ends_the_session_on_the_server(app, visitor):
    cookie = visitor.cookie()
    visitor.post("/privacy/sign-out")
    assert "You have signed out" in visitor.html
    replay = app.test_client()
    replay.set_cookie("consent_privacy", cookie, path="/privacy")
    assert replay.get("/privacy/").status_code == 401


def test_erasing_the_subject_ends_its_sessions(shop, visitor):
    shop.delete(f"/v1/subjects/{SUBJECT}", expect=204)
    assert visitor.get("/privacy/").status_code == 401


def test_the_session_ends_after_30_minutes_idle(visitor, clock):
    clock.advance(minutes=29)
    assert visitor.get("/privacy/").status_code == 200
    clock.advance(minutes=30)
    assert visitor.get("/privacy/").status_code == 401


# --- language -----------------------------------------------------------------------------------------------

def test_the_page_speaks_the_browsers_language_until_one_is_chosen(app, shop):
    v = Visitor(app, "zh-CN,zh;q=0.9")
    v.open(link(shop))
    assert '<html lang="zh-CN">' in v.html and "您的隐私选择" in v.html
    assert '<label for="p-personalized_push">个性化推送</label>' in v.html
    v.get("/privacy/?lang=en")
    assert '<label for="p-personalized_push">Personalised push notifications</label>' in v.html
    assert '<html lang="en">' in v.get("/privacy/requests").get_data(as_text=True)


# --- history sentences ---------------------------------------------------------------------------------------

PUSH = {"personalized_push": Purpose.from_dict({"key": "personalized_push", "kind": "processing",
                                                "title": {"zh-CN": "个性化推送", "en": "Personalised push"}})}


def event(action: str = "withdraw", **fields) -> dict:
    return {"event_id": "e1", "seq": 1, "recorded_at": "2026-03-01T06:02:00.000000Z", "action": action,
            "purpose": "personalized_push", "source": {"channel": "ios", "collection_point": "设置"},
            "actor": {"type": "self"}, "separate": False, **fields}


def test_history_reads_as_sentences_in_both_locales():
    [line] = history.lines([event()], PUSH, "zh-CN")
    assert line.at == datetime(2026, 3, 1, 6, 2, tzinfo=timezone.utc)
    from consent_api.web.pages import i18n

    assert f"{i18n.format_datetime(line.at, 'zh-CN')} {line.text}" == "2026-03-01 14:02 您在 iOS「设置」中关闭了「个性化推送」"
    assert history.sentence(event(), PUSH, "en") == "You turned off “Personalised push” in the iOS app (设置)"
    assert history.sentence(event("grant", separate=True, actor={"type": "guardian"}), PUSH, "zh-CN") == \
        "您的监护人在 iOS「设置」中开启了「个性化推送」（单独同意）"
    assert history.sentence(event("request_opened", purpose=None, request_type="copy", status="open",
                                  due_at="2026-10-27T16:00:00.000000Z", notice=None), PUSH, "zh-CN") == \
        "您提交了申请：获取我的个人信息副本，答复期限为 2026年10月27日"
    assert history.sentence(event("request_updated", purpose=None, request_type="copy", status="open",
                                  due_at="2026-10-27T16:00:00.000000Z", notice="overdue"), PUSH, "en") == \
        "The answer to your request “A copy of my personal data” is past its deadline (27 October 2026)"


@pytest.mark.parametrize("point, zh, en", [
    ("settings", "您在 iOS「设置」中关闭了「个性化推送」", "You turned off “Personalised push” in the iOS app (settings)"),
    ("settings/privacy", "您在 iOS「隐私设置」中关闭了「个性化推送」",
     "You turned off “Personalised push” in the iOS app (privacy settings)"),
    ("onboarding", "您在 iOS「新手引导」中关闭了「个性化推送」",
     "You turned off “Personalised push” in the iOS app (first-run guide)"),
    ("link:evt_123", "您在 iOS「登录前的选择」中关闭了「个性化推送」",
     "You turned off “Personalised push” in the iOS app (choices made before signing in)"),
    ("checkout/v2", "您在 iOS「checkout/v2」中关闭了「个性化推送」",
     "You turned off “Personalised push” in the iOS app (checkout/v2)"),
])
def test_known_collection_points_are_said_in_the_pages_language(point, zh, en):
    withdrawn = event(source={"channel": "ios", "collection_point": point})
    assert history.sentence(withdrawn, PUSH, "zh-CN") == zh
    assert history.sentence(withdrawn, PUSH, "en") == en
