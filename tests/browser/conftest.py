"""End-to-end fixtures: the real `consent-api serve` on one port, the shop's pages on another
(so every call is cross-origin and CORS is exercised for real), one Debian chromium.

Nothing here is skipped: without chromium or Playwright the tests ERROR with the reason, so
CI (which installs both) cannot pass without running them.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.browser.pageops import TIMEOUT_MS
from tests.support import servers
from tests.support.api import Api, HttpClient, Tenant
from tests.support.chromium import CHROMIUM, LAUNCH_ARGS, chromium


@pytest.fixture(scope="session")
def shared_server(tmp_path_factory) -> servers.Server:
    """One `consent-api serve` (one worker) for the whole session; its log goes to a file."""
    with servers.serving(tmp_path_factory.mktemp("server"), workers=1) as server:
        yield server


# --- the shop's pages, on another origin -------------------------------------------------------

class _PageHandler(SimpleHTTPRequestHandler):
    """Static files from the pages directory, plus /slow.js?ms=N&mark=X for ordering tests."""

    def do_GET(self):
        parts = urlsplit(self.path)
        if parts.path == "/favicon.ico":
            self.send_response(204)
            self.end_headers()
            return
        if parts.path == "/slow.js":
            query = parse_qs(parts.query)
            time.sleep(min(int(query.get("ms", ["0"])[0]), 2000) / 1000)
            body = f"window.log.push({json.dumps(query.get('mark', ['slow'])[0])});".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/javascript")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def end_headers(self):
        if self.path.endswith(".html"):
            self.send_header("Cache-Control", "no-store")
            # Response headers of a page (e.g. its Content-Security-Policy): PAGE.html.headers beside it.
            extra = Path(self.translate_path(self.path) + ".headers")
            for line in extra.read_text(encoding="utf-8").splitlines() if extra.is_file() else ():
                self.send_header(*(part.strip() for part in line.split(":", 1)))
        super().end_headers()

    def log_message(self, format, *args):  # quiet: the tests read pages, not access logs
        pass


@dataclass
class Site:
    """Writes test pages into a directory served from `origin` (not the API's origin)."""

    root: Path
    origin: str
    api: str
    pk: str = ""

    def embed(self, pk: str | None = None, locale: str | None = None, inline: bool = False) -> str:
        pk = pk or self.pk
        if inline:
            return f'<script src="{self.api}/sdk/consent.js?key={pk}" async></script>'
        loc = f' data-locale="{locale}"' if locale else ""
        return (f'<script src="{self.api}/sdk/consent.js" data-key="{pk}" data-api="{self.api}"'
                f'{loc} async></script>')

    def page(self, body: str = "", *, head: str = "", lang: str = "en", embed: str | None = None,
             **embed_opts: Any) -> str:
        """A shop page with the snippet in <head>; returns its URL."""
        script = self.embed(**embed_opts) if embed is None else embed
        html = f"""<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Tea shop</title>
<script>window.log = [];</script>
{head}
{script}
</head><body>
<main><h1>Tea shop</h1><p>Green tea, oolong and pu'er, shipped from Hangzhou.</p>
<a href="#top" id="first-link">Our teas</a>
<button type="button" id="settings" data-consent-open>Cookie settings</button>
{body}
</main></body></html>"""
        name = f"p-{uuid.uuid4().hex[:12]}.html"
        (self.root / name).write_text(html, encoding="utf-8")
        return f"{self.origin}/{name}"


@pytest.fixture(scope="session")
def page_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("pages")

    class Handler(_PageHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

    with servers.serving_files(Handler) as origin:
        yield root, origin


# --- shops, made through the HTTP API ------------------------------------------------------------

@dataclass
class Shop:
    """A web shop: its tenant, as the shop's backend calls the API, and its pages."""

    tenant: Tenant
    site: Site

    def page(self, body: str = "", **kw: Any) -> str:
        return self.site.page(body, **kw)


@pytest.fixture(scope="session")
def make_shop(shared_server, page_server):
    root, origin = page_server
    api = Api(HttpClient(shared_server.url))

    def make(name: str = "Tea shop") -> Shop:
        tenant = api.new_tenant(name, purposes=None)
        publishable = tenant.set_up_banner(origin)
        return Shop(tenant, Site(root, origin, shared_server.url, publishable))

    return make


@pytest.fixture(scope="session")
def shop(make_shop) -> Shop:
    """The shared tenant; tests that change its catalog or policy make their own."""
    return make_shop()


# --- the browser ----------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def browser():
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="session")
def launch_chromium(browser):
    """Another chromium of the same Playwright, with extra command-line switches; close it yourself."""

    def launch(*switches: str):
        return browser.browser_type.launch(executable_path=CHROMIUM, headless=True, args=[*LAUNCH_ARGS, *switches])

    return launch


@pytest.fixture
def context(browser):
    """A fresh profile per test (no cookies, no cache); page errors fail the test."""
    ctx = browser.new_context(viewport={"width": 1024, "height": 720})
    ctx.set_default_timeout(TIMEOUT_MS)
    ctx.page_errors = []
    ctx.on("weberror", lambda error: ctx.page_errors.append(str(error.error)))
    yield ctx
    errors = ctx.page_errors
    ctx.close()
    assert not errors, f"uncaught errors in the page: {errors}"


@pytest.fixture
def page(context):
    return context.new_page()
