"""data-cookie-domain shares the decision and the anonymous id across subdomains: two hostnames of
one registrable domain, both mapped to the page server on 127.0.0.1 inside chromium."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.browser.pageops import BANNER, CHOOSABLE, ROOT, TIMEOUT_MS, allowed, decide, ready, subject_id

pytestmark = pytest.mark.browser

DOMAIN = "example.test"  # .test is reserved (RFC 2606) and no public suffix: example.test is registrable
HOSTS = ("shop", "blog")


@pytest.fixture(scope="module")
def mapped(launch_chromium):
    """A chromium in which every *.example.test name resolves to 127.0.0.1."""
    browser = launch_chromium(f"--host-resolver-rules=MAP *.{DOMAIN} 127.0.0.1")
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def sites(make_shop):
    """One shop whose publishable key is registered for both subdomains of the page server."""
    shop = make_shop("Shop on two subdomains")
    port = urlsplit(shop.site.origin).port
    origins = {host: f"http://{host}.{DOMAIN}:{port}" for host in HOSTS}
    shop.site.pk = shop.tenant.issue_key(type="publishable", origins=list(origins.values()), name="subdomains")
    return shop, origins


def page_on(shop, origin: str, cookie_domain: str | None) -> str:
    attr = f' data-cookie-domain="{cookie_domain}"' if cookie_domain else ""
    site = shop.site
    embed = (f'<script src="{site.api}/sdk/consent.js" data-key="{site.pk}" data-api="{site.api}"'
             f'{attr} async></script>')
    path = urlsplit(shop.page(embed=embed)).path
    return origin + path


@pytest.fixture
def visitor(mapped):
    context = mapped.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    yield context
    context.close()


def test_a_decision_on_one_subdomain_holds_on_the_other(sites, visitor):
    shop, origins = sites
    first = visitor.new_page()
    first.goto(page_on(shop, origins["shop"], f".{DOMAIN}"))
    decide(first, "accept-all")
    anon = subject_id(first)
    cookies = {c["name"]: c for c in visitor.cookies()}
    assert {cookies[name]["domain"] for name in ("consent", "consent_sid")} == {f".{DOMAIN}"}

    second = visitor.new_page()
    second.goto(page_on(shop, origins["blog"], f".{DOMAIN}"))
    ready(second)
    assert second.locator(ROOT).count() == 0, "the decision made on shop. holds on blog."
    assert subject_id(second) == anon
    assert allowed(second)["ads"] is True
    assert sorted(shop.tenant.decisions(anon)) == [(p, "grant") for p in CHOOSABLE], "nothing recorded twice"


def test_without_it_each_subdomain_keeps_its_own(sites, visitor):
    shop, origins = sites
    first = visitor.new_page()
    first.goto(page_on(shop, origins["shop"], None))
    decide(first, "accept-all")
    assert {c["domain"] for c in visitor.cookies()} == {f"shop.{DOMAIN}"}

    second = visitor.new_page()
    second.goto(page_on(shop, origins["blog"], None))
    second.locator(BANNER).wait_for()
    assert subject_id(second) != subject_id(first)
    assert allowed(second)["ads"] is False
