"""The pages foundation (web/pages/) through a small page set of its own: the session cookie,
CSRF on every POST, the locale, the headers, the error pages, the static files and the catalogs.
The privacy center and the console are page sets like this one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import redirect, request

from consent_api.domain.model import PageKind
from consent_api.services.sessions import SessionRules
from consent_api.web import pages
from consent_api.web.pages import i18n
from consent_api.web.pages.pageset import CSP

TEMPLATES = Path(pages.__file__).with_name("templates")
DEMO = pages.PageSet("demo", "/demo", PageKind.PRIVACY, same_site="Lax")
STRICT = pages.PageSet("strict", "/strict", PageKind.CONSOLE, same_site="Strict",
                       signed_out=lambda: redirect("/strict/sign-in"))


def demo_blueprint(page_set: pages.PageSet, done: list[str]):
    bp = page_set.blueprint(__name__, template_folder="page_templates")

    @bp.get("/")
    def home():
        found = pages.session()
        return pages.render("demo/page.html", heading=pages.t("common.language"),
                            who=found.subject_id if found else None, form=page_set.prefix + "/act")

    @bp.get("/private")
    def private():
        return pages.render("demo/page.html", heading="private", who=pages.identity().subject_id)

    @bp.post("/sign-in")
    def sign_in():
        pages.sign_in(tenant_id="t1", subject_id=request.form["subject"], scopes=("audit:read",))
        return redirect(page_set.prefix + "/")

    @bp.post("/act")
    def act():
        done.append(pages.identity().subject_id)
        return redirect(page_set.prefix + "/")

    @bp.post("/sign-out")
    def sign_out():
        pages.sign_out()
        return redirect(page_set.prefix + "/")

    @bp.get("/boom")
    def boom():
        raise RuntimeError("a bug")

    return bp


@pytest.fixture
def done():
    return []


@pytest.fixture
def app(new_app, done):
    app = new_app()
    for page_set in (DEMO, STRICT):
        page_set.register(app, demo_blueprint(page_set, done))
    return app


def csrf_of(response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', response.get_data(as_text=True))
    assert found, response.get_data(as_text=True)
    return found.group(1)


def signed_in(client, subject: str = "u1", prefix: str = "/demo") -> str:
    """Sign in through the demo form; the session's CSRF token."""
    token = csrf_of(client.get(prefix + "/"))
    assert client.post(prefix + "/sign-in", data={"subject": subject, "csrf_token": token}).status_code == 302
    return csrf_of(client.get(prefix + "/"))


def set_cookie_header(response, name: str) -> str:
    return next(h for h in response.headers.getlist("Set-Cookie") if h.startswith(name + "="))


# --- the session cookie ---------------------------------------------------------------------------

def test_a_page_without_a_form_sets_no_cookie(client):
    assert "Set-Cookie" not in client.get("/demo/private").headers


def test_the_cookie_is_httponly_samesite_and_scoped_to_the_prefix(client):
    lax = set_cookie_header(client.get("/demo/"), "consent_demo")
    assert "HttpOnly" in lax and "SameSite=Lax" in lax and "Path=/demo" in lax and "Secure" not in lax
    assert "Max-Age" not in lax and "Expires" not in lax  # the server ends it, the browser forgets it

    strict = set_cookie_header(client.get("/strict/"), "consent_strict")
    assert "SameSite=Strict" in strict and "Path=/strict" in strict


def test_the_cookie_is_secure_over_https_or_when_the_operator_says_so(client, new_app, done):
    assert "Secure" in set_cookie_header(client.get("/demo/", base_url="https://consent.example"), "consent_demo")

    behind_proxy = new_app(page_cookie_secure="always")
    DEMO.register(behind_proxy, demo_blueprint(DEMO, done))
    assert "Secure" in set_cookie_header(behind_proxy.test_client().get("/demo/"), "consent_demo")


def test_signing_in_replaces_the_session_and_the_page_sees_the_identity(client, app):
    token = csrf_of(client.get("/demo/"))
    before = client.get_cookie("consent_demo", path="/demo").value
    client.post("/demo/sign-in", data={"subject": "u7", "csrf_token": token})
    after = client.get_cookie("consent_demo", path="/demo").value

    assert after != before  # a token planted before sign-in never becomes an identity
    assert 'data-who>u7<' in client.get("/demo/private").get_data(as_text=True)
    store = app.extensions["consent_api.deps"].store
    from consent_api.services.sessions import token_hash
    assert store.get_session(token_hash(before)) is None
    assert store.get_session(token_hash(after)).scopes == ("audit:read",)


def test_a_page_that_needs_an_identity_answers_401_or_the_sets_own_answer(client):
    page = client.get("/demo/private")
    assert page.status_code == 401 and page.mimetype == "text/html"
    assert 'data-error="401"' in page.get_data(as_text=True)
    assert client.get("/strict/private").headers["Location"] == "/strict/sign-in"


def test_signing_out_ends_the_session_on_the_server(client, app):
    token = signed_in(client)
    cookie = client.get_cookie("consent_demo", path="/demo").value
    out = client.post("/demo/sign-out", data={"csrf_token": token})
    assert "consent_demo=;" in set_cookie_header(out, "consent_demo")

    replay = app.test_client()
    replay.set_cookie("consent_demo", cookie, path="/demo")
    assert replay.get("/demo/private").status_code == 401


def test_an_idle_session_ends_and_its_cookie_is_cleared(client, clock):
    signed_in(client)
    clock.advance(minutes=DEMO.rules.idle.total_seconds() / 60)
    page = client.get("/demo/private")
    assert page.status_code == 401
    assert "consent_demo=;" in set_cookie_header(page, "consent_demo")


def test_the_default_session_rules_have_an_idle_timeout_and_a_lifetime():
    assert SessionRules().idle.total_seconds() == 30 * 60
    assert SessionRules().lifetime > SessionRules().idle


# --- CSRF -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("sent", [None, "", "forged"])
def test_a_post_without_the_sessions_token_is_refused_and_changes_nothing(client, done, sent):
    signed_in(client)
    data = {} if sent is None else {"csrf_token": sent}
    refused = client.post("/demo/act", data=data)

    assert refused.status_code == 403 and refused.mimetype == "text/html"
    assert 'data-error="403"' in refused.get_data(as_text=True)
    assert done == []


def test_another_sessions_token_is_refused(app, done):
    mine, theirs = app.test_client(), app.test_client()
    signed_in(mine, "u1")
    their_token = signed_in(theirs, "u2")
    assert mine.post("/demo/act", data={"csrf_token": their_token}).status_code == 403
    assert theirs.post("/demo/act", data={"csrf_token": their_token}).status_code == 302
    assert done == ["u2"]


def test_a_post_with_no_session_at_all_is_refused(client, done):
    assert client.post("/demo/sign-in", data={"subject": "u1", "csrf_token": "x"}).status_code == 403
    assert client.post("/demo/act", json={"csrf_token": "x"}).status_code == 403


# --- locale ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("header", "expected"), [
    ("zh-CN,zh;q=0.9", "zh-CN"), ("zh-TW", "zh-CN"), ("zh", "zh-CN"), ("en-GB,en;q=0.8", "en"),
    ("fr-FR, zh-HK;q=0.5", "zh-CN"), ("fr, de", "en"), ("de;q=0.9, en;q=0.2, zh;q=0.5", "zh-CN"), ("", "en"),
])
def test_accept_language_chooses_the_locale(client, header, expected):
    html = client.get("/demo/", headers={"Accept-Language": header}).get_data(as_text=True)
    assert f'<html lang="{expected}">' in html


def test_lang_in_the_query_wins_and_is_remembered_in_the_session(client):
    signed_in(client)
    zh = client.get("/demo/?lang=zh-CN", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert '<html lang="zh-CN">' in zh and "<h1>语言</h1>" in zh
    later = client.get("/demo/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert '<html lang="zh-CN">' in later


def test_every_page_links_to_itself_in_each_locale(client):
    html = client.get("/demo/?x=1", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert 'href="/demo/?x=1&amp;lang=zh-CN" lang="zh-CN" hreflang="zh-CN">中文</a>' in html
    assert 'hreflang="en" aria-current="true">English</a>' in html


# --- headers and error pages ----------------------------------------------------------------------------

def test_pages_carry_a_strict_csp_and_are_never_cached(client):
    for response in (client.get("/demo/"), client.get("/demo/private"), client.get("/demo/nowhere")):
        assert response.headers["Content-Security-Policy"] == CSP
        assert "unsafe-inline" not in CSP and "http" not in CSP
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_errors_under_a_prefix_are_pages_and_elsewhere_problems(client):
    page = client.get("/demo/nowhere", headers={"Accept-Language": "zh-CN"})
    assert page.status_code == 404 and page.mimetype == "text/html"
    assert "找不到页面" in page.get_data(as_text=True)

    api = client.get("/v1/nowhere")
    assert api.status_code == 404 and api.mimetype == "application/problem+json"


def test_a_bug_in_a_page_answers_a_500_page_without_a_traceback(client):
    page = client.get("/demo/boom")
    assert page.status_code == 500 and page.mimetype == "text/html"
    assert "Traceback" not in page.get_data(as_text=True) and "a bug" not in page.get_data(as_text=True)


def test_the_stylesheet_is_served_versioned_and_cached_for_a_year(client):
    html = client.get("/demo/").get_data(as_text=True)
    href = re.search(r'<link rel="stylesheet" href="([^"]+)"', html).group(1)
    assert href.startswith("/pages/static/pages.css?v=")
    css = client.get(href)
    assert css.status_code == 200 and css.mimetype == "text/css"
    assert "immutable" in css.headers["Cache-Control"]
    assert client.get("/pages/static/pages.css").headers["Cache-Control"] == "no-cache"
    assert client.get("/pages/static/../pages.css").status_code == 404
    assert client.get("/pages/static/nothing.css").status_code == 404


def test_the_stylesheet_loads_nothing_from_elsewhere():
    css = (Path(pages.__file__).with_name("static") / "pages.css").read_text(encoding="utf-8")
    assert "url(" not in css and "@import" not in css
    assert '"PingFang SC"' in css and '"Noto Sans CJK SC"' in css


# --- catalogs -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", i18n.catalog_names())
def test_every_catalog_has_the_same_keys_and_placeholders_in_every_locale(name):
    english = i18n.catalog(name, "en")
    for locale in i18n.LOCALES:
        other = i18n.catalog(name, locale)
        assert sorted(other) == sorted(english), f"{name}.{locale}.json differs in keys"
        for key, value in other.items():
            assert set(re.findall(r"{(\w+)}", value)) == set(re.findall(r"{(\w+)}", english[key])), key


def test_every_text_the_templates_use_is_defined():
    keys = set()
    for name in i18n.catalog_names():
        keys |= set(i18n.catalog(name, "en"))
    used = set()
    for template in TEMPLATES.rglob("*.html"):
        used |= set(re.findall(r"""\bt\(['"]([\w.]+)['"]\s*[,)]""", template.read_text(encoding="utf-8")))
    assert used and used <= keys, sorted(used - keys)
    for status in pages.ERROR_STATUSES:
        assert {f"error.{status}.title", f"error.{status}.text"} <= keys
