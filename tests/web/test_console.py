"""The console through Flask's test client: signing in with a key (never kept in the browser),
what each key's scopes show and allow, CSRF and forged posts, idle timeout and sign-out, the
catalog and key forms going through the API's rules, erasure with its typed confirmation,
receipts, the overview's CSV, the audit downloads, and both languages. Chromium runs the
issue's checks end to end in tests/browser/test_console.py."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest

from consent_api import verify
from consent_api.domain.clock import system_clock
from consent_api.domain.model import Action, Channel, Kind, Scope, Status
from consent_api.domain.requests import Notice, RequestStatus, RequestType
from consent_api.domain.webhooks import TYPES as webhook_types
from consent_api.services import webhooks as hooks
from consent_api.web.console import requests as rights_views
from consent_api.web.pages import i18n
from tests.builders import decision

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
TEMPLATES = Path(__file__).resolve().parents[2] / "consent_api" / "web" / "console" / "templates"


class Officer:
    """A browser at the console: the test client's cookies, and the CSRF token of the last page."""

    def __init__(self, client):
        self.client = client
        self.csrf = ""

    def get(self, path: str, **kw):
        response = self.client.get(path, **kw)
        found = CSRF.search(response.get_data(as_text=True))
        if found:
            self.csrf = found.group(1)
        return response

    def post(self, path: str, data: dict | None = None, *, csrf: bool = True, **kw):
        form = dict(data or {})
        if csrf:
            form["csrf_token"] = self.csrf
        return self.client.post(path, data=form, **kw)

    def sign_in(self, key: str):
        self.get("/console/sign-in")
        return self.post("/console/sign-in", {"api_key": key})

    def page(self, path: str, status: int = 200) -> str:
        response = self.get(path)
        assert response.status_code == status, (path, response.status_code, response.get_data(as_text=True)[-3000:])
        return response.get_data(as_text=True)


@pytest.fixture
def officer(client) -> Officer:
    return Officer(client)


@pytest.fixture
def shop(app_tenant):
    """The app tenant with a few decisions: u-1 granted push and was asked about location."""
    app_tenant.grant("u-1", "personalized_push")
    app_tenant.refuse("u-2", "personalized_push", channel="web")
    app_tenant.prompt("u-1", "location")
    return app_tenant


def post_forms(html: str) -> list[str]:
    """The data-form names of the POST forms on a page."""
    return re.findall(r'<form method="post"[^>]*data-form="([^"]+)"', html)


CHARTS = ("opt-in-rate", "decisions-by-channel", "withdrawals", "allowed-subjects", "reconsent-backlog")
PAGES = ["/console/", "/console/subjects", "/console/subjects/u-1", "/console/purposes", "/console/policies",
         "/console/vendors", "/console/audit", "/console/requests"]


# --- signing in ------------------------------------------------------------------------------------

def test_pages_send_a_signed_out_browser_to_sign_in(client):
    for path in PAGES + ["/console/keys", "/console/webhooks"]:
        response = client.get(path)
        assert response.status_code == 302 and response.headers["Location"].endswith("/console/sign-in"), path


def test_the_sign_in_form_and_the_session_cookie(officer, shop):
    html = officer.page("/console/sign-in")
    assert 'data-form="sign-in"' in html and 'name="api_key"' in html and 'type="password"' in html

    response = officer.sign_in(shop.admin)

    assert response.status_code == 302 and response.headers["Location"].endswith("/console/")
    cookie = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("consent_console="))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console" in cookie
    assert shop.admin not in cookie  # the key is never the browser's
    overview = officer.page("/console/")
    assert shop.admin not in overview and 'data-action="sign-out"' in overview


@pytest.mark.parametrize("key, status", [("sk_not_a_key", 401), ("pk_something", 401), ("", 401)])
def test_a_wrong_key_is_refused_on_the_sign_in_page(officer, shop, key, status):
    response = officer.sign_in(key)
    assert response.status_code == status
    assert "sign-in-error" in response.get_data(as_text=True)
    assert officer.client.get("/console/").status_code == 302


def test_publishable_revoked_and_write_only_keys_open_nothing(officer, shop):
    assert officer.sign_in(shop.publishable).status_code == 401
    assert officer.sign_in(shop.writer).status_code == 403  # no scope the console shows
    shop.delete(f"/v1/keys/{shop.key_ids['reader']}", expect=200)
    assert officer.sign_in(shop.reader).status_code == 401


def test_a_sign_in_without_its_csrf_token_is_refused(officer, shop):
    officer.get("/console/sign-in")
    response = officer.post("/console/sign-in", {"api_key": shop.admin}, csrf=False)
    assert response.status_code == 403
    assert officer.client.get("/console/").status_code == 302


# --- what each key sees and may do -----------------------------------------------------------------

def test_an_audit_key_sees_everything_it_may_read_and_no_form_that_changes_data(officer, shop):
    officer.sign_in(shop.auditor)
    for path in PAGES:
        assert post_forms(officer.page(path)) == ["sign-out"], path
    officer.page("/console/keys", 403)
    officer.page("/console/webhooks", 403)


def test_forged_posts_of_an_audit_session_are_refused_and_change_nothing(officer, shop):
    officer.sign_in(shop.auditor)
    officer.page("/console/purposes")
    forged = {"key": "spy", "kind": "marketing", "title_en": "Spy", "title_zh-CN": "间谍"}

    assert officer.post("/console/purposes", forged, csrf=False).status_code == 403
    assert officer.post("/console/purposes", forged).status_code == 403  # with its own token: no scope
    assert officer.post("/console/subjects/u-1/erase", {"confirm": "u-1"}).status_code == 403
    assert officer.post("/console/keys", {"name": "x", "scopes": "admin"}).status_code == 403
    assert officer.post(f"/console/keys/{shop.key_ids['reader']}/revoke").status_code == 403
    assert officer.post("/console/policies", {"version": "x"}).status_code == 403
    assert "spy" not in [p["key"] for p in shop.get("/v1/purposes").get_json()["items"]]
    assert shop.state("u-1")["purposes"]["personalized_push"]["allowed"] is True
    assert shop.get(f"/v1/keys/{shop.key_ids['reader']}").get_json()["revoked_at"] is None


def test_a_reader_sees_the_overview_and_subjects_but_no_export(officer, shop):
    officer.sign_in(shop.reader)
    officer.page("/console/")
    officer.page("/console/subjects/u-1")
    officer.page("/console/audit", 403)
    assert officer.get("/console/audit/export.ndjson").status_code == 403
    assert 'href="/console/audit"' not in officer.page("/console/")


def test_an_admin_session_shows_every_form(officer, shop):
    officer.sign_in(shop.admin)
    assert "erase" in post_forms(officer.page("/console/subjects/u-1"))
    assert "purpose" in post_forms(officer.page("/console/purposes"))
    assert {"key", "subject-token-key", "revoke-key"} <= set(post_forms(officer.page("/console/keys")))


# --- the session ends ------------------------------------------------------------------------------

def test_sign_out_ends_the_session_on_the_server(officer, shop):
    officer.sign_in(shop.admin)
    officer.page("/console/")
    cookie = officer.client.get_cookie("consent_console", path="/console").value

    response = officer.post("/console/sign-out")

    assert response.status_code == 302 and response.headers["Location"].endswith("/console/sign-in?signed_out=1")
    officer.client.set_cookie("consent_console", cookie, path="/console")  # the old cookie, replayed
    assert officer.client.get("/console/").status_code == 302


def test_a_session_ends_after_30_idle_minutes(officer, shop, clock):
    officer.sign_in(shop.admin)
    clock.advance(minutes=29)
    officer.page("/console/")
    clock.advance(minutes=29)
    officer.page("/console/")  # activity keeps it
    clock.advance(minutes=31)
    assert officer.client.get("/console/").status_code == 302


def test_revoking_the_key_ends_its_console_session_at_the_next_request(officer, shop):
    officer.sign_in(shop.reader)
    officer.page("/console/")
    shop.delete(f"/v1/keys/{shop.key_ids['reader']}", expect=200)
    assert officer.client.get("/console/").status_code == 302


# --- the catalog, through the API's rules -----------------------------------------------------------

PURPOSE_FORM = {"key": "newsletter", "kind": "marketing", "title_en": "Newsletter", "title_zh-CN": "电子报",
                "description_en": "A monthly e-mail", "description_zh-CN": "每月一封邮件", "validity_days": "365",
                "reprompt_after_hours": "72"}


def test_a_purpose_defined_in_the_console_is_the_apis(officer, shop):
    officer.sign_in(shop.admin)
    officer.page("/console/purposes")
    response = officer.post("/console/purposes", PURPOSE_FORM)
    assert response.status_code == 302

    defined = shop.get("/v1/purposes/newsletter").get_json()
    assert defined["title"] == {"en": "Newsletter", "zh-CN": "电子报"}
    assert (defined["kind"], defined["validity_days"], defined["reprompt_after_hours"]) == ("marketing", 365, 72)
    assert 'data-purpose="newsletter"' in officer.page("/console/purposes?saved=newsletter")


def test_a_bad_purpose_form_is_422_with_its_fields_and_saves_nothing(officer, shop):
    officer.sign_in(shop.admin)
    officer.page("/console/purposes")
    response = officer.post("/console/purposes", {**PURPOSE_FORM, "key": "Bad Key", "validity_days": "soon"})
    assert response.status_code == 422
    assert 'data-error-field="validity_days"' in response.get_data(as_text=True)
    response = officer.post("/console/purposes", {**PURPOSE_FORM, "kind": "astrology"})
    assert response.status_code == 422 and 'data-error-field="kind"' in response.get_data(as_text=True)
    assert shop.get("/v1/purposes/newsletter").status_code == 404


def test_editing_a_purpose_keeps_what_the_form_does_not_show(officer, shop):
    officer.sign_in(shop.admin)
    html = officer.page("/console/purposes?edit=analytics_cookies")
    assert 'value="analytics_cookies"' in html and 'value="180"' in html
    officer.post("/console/purposes", {"key": "analytics_cookies", "kind": "cookie", "title_en": "Statistics",
                                       "title_zh-CN": "统计", "validity_days": "90"})
    edited = shop.get("/v1/purposes/analytics_cookies").get_json()
    assert (edited["title"]["en"], edited["validity_days"], edited["consent_mode"]) == (
        "Statistics", 90, ["analytics_storage"])


def test_policies_and_vendors_are_published_from_the_console(officer, shop):
    officer.sign_in(shop.admin)
    officer.page("/console/policies")
    officer.post("/console/policies", {"version": "2026-03", "material": "on", "effective_at": "2026-03-01T18:00",
                                       "summary_en": "Cross-border transfer added", "summary_zh-CN": "新增出境条款"})
    policy = shop.get("/v1/policies/2026-03").get_json()
    assert policy["material"] is True and policy["effective_at"] == "2026-03-01T10:00:00.000000Z"
    assert 'data-material="yes"' in officer.page("/console/policies")
    assert officer.post("/console/policies", {"version": "2026-03"}).status_code == 409  # published already

    officer.post("/console/vendors", {"key": "getui", "name": "个推", "company": "每日互动",
                                      "data_collected": "设备标识符\n网络信息", "purposes": "personalized_push",
                                      "scenario": "推送", "privacy_policy_url": "https://example.com/p"})
    vendor = shop.get("/v1/vendors/getui").get_json()
    assert vendor["data_collected"] == ["设备标识符", "网络信息"] and vendor["purposes"] == ["personalized_push"]


# --- keys ---------------------------------------------------------------------------------------------

def test_an_issued_key_is_shown_once_and_works(officer, shop):
    officer.sign_in(shop.admin)
    officer.page("/console/keys")
    response = officer.post("/console/keys", {"name": "BI tool", "scopes": "consents:read"})
    assert response.status_code == 201
    secret = re.search(r'data-secret[^>]*value="(sk_[^"]+)"|value="(sk_[^"]+)"[^>]*data-secret',
                       response.get_data(as_text=True))
    key = secret.group(1) or secret.group(2)
    assert shop.get("/v1/stats", token=key).status_code == 200
    assert key not in officer.page("/console/keys")  # never again


def test_revoking_a_key_in_the_console_stops_it_and_its_sessions(officer, client, shop):
    reader = Officer(client.application.test_client())
    reader.sign_in(shop.reader)
    officer.sign_in(shop.admin)
    officer.page("/console/keys")
    assert officer.post(f"/console/keys/{shop.key_ids['reader']}/revoke").status_code == 302
    assert shop.get("/v1/purposes", token=shop.reader).status_code == 401
    assert reader.client.get("/console/").status_code == 302


def test_subject_token_keys_are_registered_with_the_secret_shown_once(officer, shop):
    officer.sign_in(shop.admin)
    officer.page("/console/keys")
    response = officer.post("/console/subject-token-keys", {"alg": "HS256"})
    assert response.status_code == 201 and "sts_" in response.get_data(as_text=True)
    assert officer.post("/console/subject-token-keys", {"alg": "ES256"}).status_code == 422  # needs its key


# --- subjects ------------------------------------------------------------------------------------------

def test_a_subject_shows_its_state_history_and_verified_chain(officer, shop):
    officer.sign_in(shop.auditor)
    html = officer.page("/console/subjects/u-1")
    events = shop.history("u-1")
    assert re.findall(r'data-event-id="([^"]+)"', html) == [e["event_id"] for e in events]
    assert 'data-chain="verified"' in html and all(e["hash"] in html for e in events)
    assert 'data-purpose="personalized_push" data-status="granted"' in html
    assert officer.get("/console/subjects?id=u-1").headers["Location"].endswith("/console/subjects/u-1")
    assert officer.page("/console/subjects/nobody", 404).count("subject-id-error") >= 1
    assert officer.page("/console/subjects?id=bad%20id", 422)


def test_a_receipt_is_checked_against_the_service_keys_and_the_chain(officer, shop):
    receipt = shop.record("u-3", decision("location"), expect=201).get_json()["receipt"]
    officer.sign_in(shop.auditor)

    good = officer.page(f"/console/subjects/u-3?receipt={receipt}")
    head, body, signature = receipt.split(".")
    forged = officer.page(f"/console/subjects/u-3?receipt={head}.{body}.{signature[::-1]}")
    other = officer.page(f"/console/subjects/u-1?receipt={receipt}")

    assert 'data-receipt="valid"' in good and 'data-in-chain="yes"' in good
    assert 'data-receipt="invalid"' in forged
    assert 'data-receipt="invalid"' in other


def test_an_anonymous_visitor_linked_in_is_shown(officer, shop):
    shop.post("/v1/public/consents", {"subject_id": "anon-1234567890abcdef", "policy_version": "2026-01",
                                      "decisions": [{"purpose": "analytics_cookies", "granted": True}]},
              token=shop.publishable, headers={"Origin": "https://www.example.cn"}, expect=201)
    shop.post("/v1/subjects/u-1/links", {"anonymous_subject_id": "anon-1234567890abcdef"}, expect=200)
    officer.sign_in(shop.reader)
    html = officer.page("/console/subjects/u-1")
    assert 'href="/console/subjects/anon-1234567890abcdef"' in html


def test_erasure_needs_the_subject_id_typed_again(officer, shop):
    officer.sign_in(shop.admin)
    officer.page("/console/subjects/u-1")
    response = officer.post("/console/subjects/u-1/erase", {"confirm": "u-2"})
    assert response.status_code == 422 and "erase-error" in response.get_data(as_text=True)
    assert shop.state("u-1")

    response = officer.post("/console/subjects/u-1/erase", {"confirm": "u-1"})

    assert response.status_code == 302 and response.headers["Location"].endswith("/console/subjects?erased=1")
    shop.get("/v1/subjects/u-1/consents", expect=404)
    assert 'data-notice="erased"' in officer.page("/console/subjects?erased=1")


# --- overview and audit ---------------------------------------------------------------------------------

def test_the_overview_tables_and_csv_hold_the_stats_numbers(officer, shop):
    officer.sign_in(shop.auditor)
    html = officer.page("/console/?days=7")
    today = shop.get("/v1/stats", query={"purpose": "personalized_push"}).get_json()["days"][-1]

    cell = re.search(rf'<tr data-date="{today["date"]}">(.*?)</tr>', html.split('data-table="opt-in-rate"')[1], re.S)
    assert 'data-grants="1" data-decisions="2"' in cell.group(1)
    for chart in CHARTS:
        assert f'data-chart="{chart}"' in html and f'data-table="{chart}"' in html and f'data-csv="{chart}"' in html
    rows = list(csv.DictReader(io.StringIO(officer.get("/console/overview/decisions-by-channel.csv?days=7")
                                          .get_data(as_text=True))))
    assert len(rows) == 7 and rows[-1]["date"] == today["date"]
    assert (rows[-1]["ios"], rows[-1]["web"]) == (str(today["channels"]["ios"]), str(today["channels"]["web"]))
    assert officer.get("/console/overview/nothing.csv").status_code == 404


def test_the_audit_downloads_verify_offline(officer, shop, tmp_path, clock):
    officer.sign_in(shop.auditor)
    html = officer.page("/console/audit?since_day=&until_day=&purpose=personalized_push&subject_id=")
    links = dict(re.findall(r'href="([^"]+)" data-download="(\w+)"', html))
    links = {kind: href.replace("&amp;", "&") for href, kind in links.items()}
    assert set(links) == {"ndjson", "csv", "manifest", "jwks"}
    assert all("purpose=personalized_push" in links[k] for k in ("ndjson", "csv", "manifest"))
    clock.advance(seconds=1)
    shop.grant("u-9", "personalized_push")  # after the page: outside its fixed "until"

    for kind, name in (("ndjson", "export.ndjson"), ("manifest", "export.manifest.jws"), ("jwks", "jwks.json"),
                       ("csv", "export.csv")):
        response = officer.get(links[kind])
        assert response.status_code == 200 and name in response.headers["Content-Disposition"]
        (tmp_path / name).write_bytes(response.get_data())

    assert verify.verify_files(tmp_path / "export.ndjson", tmp_path / "export.manifest.jws", tmp_path / "jwks.json").ok
    assert verify.verify_files(tmp_path / "export.csv", tmp_path / "export.manifest.jws", tmp_path / "jwks.json").ok
    lines = (tmp_path / "export.ndjson").read_text().splitlines()
    assert len(lines) == 2 and {json.loads(line)["subject_id"] for line in lines} == {"u-1", "u-2"}


# --- languages -----------------------------------------------------------------------------------------

def test_pages_speak_the_browsers_language_and_switch_with_lang(officer, shop):
    zh = officer.get("/console/sign-in", headers={"Accept-Language": "zh-CN,zh;q=0.9"}).get_data(as_text=True)
    assert '<html lang="zh-CN">' in zh and "登录同意管理控制台" in zh
    officer.sign_in(shop.admin)
    assert '<html lang="en">' in officer.page("/console/?lang=en")
    assert '<html lang="zh-CN">' in officer.page("/console/?lang=zh-CN")
    assert '<html lang="zh-CN">' in officer.page("/console/subjects")  # remembered in the session


def test_every_text_the_console_uses_is_in_both_catalogs():
    used = set()
    for template in TEMPLATES.rglob("*.html"):
        used |= set(re.findall(r"\bt\('([a-z_.-]+)'[,)]", template.read_text(encoding="utf-8")))
    # keys made from a value: every value they can take
    used |= {f"status.{s}" for s in Status} | {f"action.{a}" for a in Action} | {f"kind.{k}" for k in Kind}
    used |= {f"channel.{c}" for c in Channel} | {f"keys.scope_{s.replace(':', '_')}" for s in Scope}
    used |= {f"chart.{c}.{part}" for c in CHARTS for part in ("title", "about")}
    used |= {f"nav.{n}" for n in ("webhooks", "requests")}
    used |= {"sign_in.error_401", "sign_in.error_403", "keys.type_secret", "keys.type_publishable", "keys.done_revoked",
             "keys.done_registered"}
    secrets = ("api_key", "subject_token_key", "webhook", "webhook_rotated")
    used |= {f"secret.{part}_{what}" for what in secrets for part in ("title", "name")}
    used |= {f"webhook_type.{t}" for t in webhook_types} | {f"delivery.{s}" for s in (*hooks.STATUSES, "all")}
    used |= {"webhooks.done_deleted"} | {f"webhook.done_{d}" for d in ("enabled", "disabled", "tested", "retried",
                                                                        "replayed")}
    used |= {f"requests.filter_{f}" for f in rights_views.STATUS_FILTERS} | {f"request.type.{t}" for t in RequestType}
    used |= {f"request.status.{s}" for s in RequestStatus} | {f"requests.{n}" for n in Notice}
    for locale in i18n.LOCALES:
        catalog = {**i18n.catalog("console", locale), **i18n.catalog("history", locale),
                   **i18n.catalog("common", locale)}
        assert sorted(used - catalog.keys()) == [], locale
    assert i18n.catalog("console", "en").keys() == i18n.catalog("console", "zh-CN").keys()


def test_the_chart_library_is_vendored_with_its_license_and_served_here(client):
    static = Path(i18n.__file__).with_name("static")
    assert "MIT License" in (static / "uPlot.LICENSE").read_text()
    assert (static / "uPlot.iife.min.js").read_text()[:60].startswith("/*! https://github.com/leeoniya/uPlot (v1.6.32)")
    response = client.get("/pages/static/uPlot.iife.min.js")
    assert response.status_code == 200 and response.mimetype in ("text/javascript", "application/javascript")


@pytest.fixture
def clock_near_now(clock):
    """MongoDB (and mongomock) expire sessions by the server's own clock: start the app near it."""
    clock.now = system_clock().replace(microsecond=0)
    return clock


@pytest.mark.parametrize("adapter", ["mongomock"], indirect=True)
def test_the_console_on_mongodb(clock_near_now, officer, shop):
    """The same pages on the MongoDB adapter: sessions, the counters, a subject, an erasure."""
    assert officer.client.application.extensions["consent_api.settings"].database_url.startswith("mongomock")
    officer.sign_in(shop.admin)
    html = officer.page("/console/?days=7")
    assert 'data-grants="1" data-decisions="2"' in html
    assert 'data-chain="verified"' in officer.page("/console/subjects/u-1")
    officer.post("/console/subjects/u-2/erase", {"confirm": "u-2"})
    shop.get("/v1/subjects/u-2/consents", expect=404)
    officer.post("/console/sign-out")
    assert officer.client.get("/console/").status_code == 302

