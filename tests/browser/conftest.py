"""End-to-end fixtures: the real `consent-api serve` on one port, the shop's pages on another
(so every call is cross-origin and CORS is exercised for real), one Debian chromium.

Nothing here is skipped: without chromium or Playwright the tests ERROR with the reason, so
CI (which installs both) cannot pass without running them.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.browser.pageops import POLICY, TIMEOUT_MS

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CONSENT_CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]
OPERATOR_TOKEN = "op-token-browser-tests"
READY_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- the API over HTTP -----------------------------------------------------------------------

@dataclass
class Api:
    base: str

    def call(self, method: str, path: str, body: Any = None, token: str | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                raw, status = response.read(), response.status
        except urllib.error.HTTPError as exc:
            raw, status = exc.read(), exc.code
        return status, (json.loads(raw) if raw else None)

    def ok(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        status, answer = self.call(method, path, body, token)
        assert 200 <= status < 300, f"{method} {path} -> {status}: {answer}"
        return answer


@pytest.fixture(scope="session")
def api_server(tmp_path_factory) -> str:
    """`consent-api serve` as a subprocess on a free port; its log goes to a file."""
    tmp = tmp_path_factory.mktemp("server")
    port = free_port()
    env = {**os.environ, "CONSENT_DATABASE_URL": f"sqlite:///{tmp}/consent.db",
           "CONSENT_ADMIN_TOKEN": OPERATOR_TOKEN}
    log_path = tmp / "server.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "consent_api.cli", "serve", "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO,
        start_new_session=True)
    base = f"http://127.0.0.1:{port}"

    def stop() -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()

    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            stop()
            pytest.fail(f"consent-api serve exited ({proc.returncode}):\n{log_path.read_text()[-3000:]}",
                        pytrace=False)
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=1) as response:
                if response.status == 200:
                    break
        except (OSError, urllib.error.URLError):
            pass
        if time.monotonic() > deadline:
            stop()
            pytest.fail(f"consent-api serve not ready after {READY_TIMEOUT_S:.0f} s:\n"
                        f"{log_path.read_text()[-3000:]}", pytrace=False)
        time.sleep(0.1)
    yield base
    stop()


@pytest.fixture(scope="session")
def api(api_server) -> Api:
    return Api(api_server)


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

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="page-server", daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


# --- tenants, made through the HTTP API ---------------------------------------------------------

PURPOSES = {
    "necessary": {"kind": "cookie", "essential": True,
                  "title": {"en": "Strictly necessary", "zh-CN": "必要 Cookie"},
                  "description": {"en": "Sign-in, basket and security.", "zh-CN": "登录、购物车与安全。"}},
    "analytics": {"kind": "cookie", "consent_mode": ["analytics_storage"],
                  "title": {"en": "Analytics", "zh-CN": "统计分析"},
                  "description": {"en": "Counts visits to improve the shop.",
                                  "zh-CN": "统计访问量，用于改进网站。"}},
    "ads": {"kind": "marketing", "consent_mode": ["ad_storage", "ad_user_data", "ad_personalization"],
            "title": {"en": "Personalised ads", "zh-CN": "个性化广告"},
            "description": {"en": "Ads that match your interests.", "zh-CN": "根据您的兴趣展示广告。"}},
    "sharing": {"kind": "third_party",
                "title": {"en": "Sharing with partners", "zh-CN": "与合作方共享"},
                "description": {"en": "Your order history, shared with our delivery partner.",
                                "zh-CN": "与配送合作方共享您的订单记录。"}},
    "faceid": {"kind": "processing", "sensitive": True,
               "title": {"en": "Face recognition", "zh-CN": "人脸识别"}},
}
VENDOR = {"name": "Umeng analytics SDK", "company": "友盟同欣（北京）科技有限公司",
          "data_collected": ["device identifiers", "pages visited"], "purposes": ["analytics"],
          "scenario": "Visit statistics", "privacy_policy_url": "https://www.umeng.com/policy"}


@dataclass
class Shop:
    """One tenant as its backend sees it, plus the page site bound to its publishable key."""

    api: Api
    id: str
    admin: str
    pk: str
    site: Site
    policies: list[str] = field(default_factory=list)

    def page(self, body: str = "", **kw: Any) -> str:
        return self.site.page(body, **kw)

    def history(self, subject: str) -> list[dict]:
        status, body = self.api.call("GET", f"/v1/subjects/{subject}/history?limit=500", token=self.admin)
        return body["items"] if status == 200 else []

    def decisions(self, subject: str) -> list[tuple[str, str]]:
        return [(e["purpose"], e["action"]) for e in self.history(subject)]

    def state(self, subject: str) -> dict:
        return self.api.ok("GET", f"/v1/subjects/{subject}/consents", token=self.admin)

    def publish(self, version: str, material: bool, effective_at: str | None = None) -> None:
        body = {"version": version, "material": material, "url": f"https://tea.example/privacy/{version}"}
        if effective_at:
            body["effective_at"] = effective_at
        self.api.ok("POST", "/v1/policies", body, token=self.admin)
        self.policies.append(version)


@pytest.fixture(scope="session")
def make_shop(api, page_server):
    root, origin = page_server

    def make(name: str = "Tea shop") -> Shop:
        tenant = api.ok("POST", "/v1/tenants", {"name": name}, token=OPERATOR_TOKEN)
        admin = tenant["admin_key"]
        for key, body in PURPOSES.items():
            api.ok("PUT", f"/v1/purposes/{key}", body, token=admin)
        api.ok("PUT", "/v1/vendors/umeng", VENDOR, token=admin)
        pk = api.ok("POST", "/v1/keys", {"name": "web banner", "type": "publishable",
                                         "origins": [origin]}, token=admin)["key"]
        shop = Shop(api, tenant["id"], admin, pk, Site(root, origin, api.base, pk))
        shop.publish(POLICY, material=True, effective_at=iso(datetime.now(timezone.utc) - timedelta(days=1)))
        return shop

    return make


@pytest.fixture(scope="session")
def shop(make_shop) -> Shop:
    """The shared tenant; tests that change its catalog or policy make their own."""
    return make_shop()


# --- the browser ----------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (`apt-get install chromium`, "
                    "as .ci/run does); browser tests never skip", pytrace=False)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the Python package playwright is missing: pip install -e '.[test]'", pytrace=False)
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        yield launched
        launched.close()


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
