"""Shared by the bench scripts: a live `consent-api serve`, a static page server on another
origin (gzip like any production web server), a demo tenant made over HTTP, and Debian's
chromium through Playwright."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CONSENT_CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]
OPERATOR = "op-token-bench"

PURPOSES = {
    "necessary": {"kind": "cookie", "essential": True,
                  "title": {"en": "Strictly necessary", "zh-CN": "必要 Cookie"},
                  "description": {"en": "Sign-in, basket and security.", "zh-CN": "登录、购物车与安全。"}},
    "analytics": {"kind": "cookie", "consent_mode": ["analytics_storage"],
                  "title": {"en": "Analytics", "zh-CN": "统计分析"},
                  "description": {"en": "Counts visits so we can improve the shop.",
                                  "zh-CN": "统计访问量，用于改进网站。"}},
    "ads": {"kind": "marketing", "consent_mode": ["ad_storage", "ad_user_data", "ad_personalization"],
            "title": {"en": "Personalised ads", "zh-CN": "个性化广告"},
            "description": {"en": "Ads that match your interests, on this site and others.",
                            "zh-CN": "根据您的兴趣在本站及其他网站展示广告。"}},
    "sharing": {"kind": "third_party",
                "title": {"en": "Sharing with partners", "zh-CN": "与合作方共享"},
                "description": {"en": "Your order history, shared with our delivery partner.",
                                "zh-CN": "与配送合作方共享您的订单记录。"}},
}
VENDOR = {"name": "Umeng analytics SDK", "company": "友盟同欣（北京）科技有限公司",
          "data_collected": ["device identifiers", "pages visited"], "purposes": ["analytics"],
          "scenario": "Visit statistics", "privacy_policy_url": "https://www.umeng.com/policy"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base: str, method: str, path: str, body=None, token: str | None = None):
    request = urllib.request.Request(base + path, method=method,
                                     data=None if body is None else json.dumps(body).encode())
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        raw = response.read()
    return json.loads(raw) if raw and response.headers.get_content_type() == "application/json" else raw


@contextlib.contextmanager
def api_server(workdir: Path, ready_timeout: float = 30.0):
    """`consent-api serve` on a free port with a fresh SQLite file; yields its base URL."""
    port = free_port()
    env = {**os.environ, "CONSENT_DATABASE_URL": f"sqlite:///{workdir}/consent.db",
           "CONSENT_ADMIN_TOKEN": OPERATOR}
    with open(workdir / "server.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "consent_api.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
             "--workers", "1"], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
            cwd=REPO, start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + ready_timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError("consent-api serve exited:\n" + (workdir / "server.log").read_text())
                try:
                    urllib.request.urlopen(base + "/readyz", timeout=1).close()
                    break
                except (OSError, urllib.error.URLError):
                    if time.monotonic() > deadline:
                        raise RuntimeError("consent-api serve not ready in time") from None
                    time.sleep(0.1)
            yield base
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


@contextlib.contextmanager
def page_server(root: Path):
    """Static files from root, gzip-encoded when the browser accepts it; yields the origin."""
    cache: dict[Path, bytes] = {}

    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def do_GET(self):
            path = root / self.path.split("?")[0].lstrip("/")
            if "gzip" not in self.headers.get("Accept-Encoding", "") or not path.is_file():
                return super().do_GET()
            if path not in cache:
                cache[path] = gzip.compress(path.read_bytes(), compresslevel=9)
            body = cache[path]
            self.send_response(200)
            self.send_header("Content-Type", self.guess_type(str(path)))
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


VENDOR_ZH = {"name": "友盟统计 SDK", "company": "友盟同欣（北京）科技有限公司",
             "data_collected": ["设备标识符（OAID、Android ID）", "访问的页面"], "purposes": ["analytics"],
             "scenario": "统计网站访问量", "privacy_policy_url": "https://www.umeng.com/policy"}


def make_tenant(api: str, origin: str, vendor: dict = VENDOR) -> dict:
    """A shop with the usual web purposes, a policy, a vendor; returns its keys."""
    tenant = call(api, "POST", "/v1/tenants", {"name": "Tea shop"}, OPERATOR)
    admin = tenant["admin_key"]
    for key, body in PURPOSES.items():
        call(api, "PUT", f"/v1/purposes/{key}", body, admin)
    call(api, "PUT", "/v1/vendors/umeng", vendor, admin)
    since = (datetime.now(timezone.utc) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    call(api, "POST", "/v1/policies", {"version": "2026-01", "effective_at": since, "material": True,
                                       "url": "https://tea.example/privacy"}, admin)
    pk = call(api, "POST", "/v1/keys", {"name": "web banner", "type": "publishable",
                                        "origins": [origin]}, admin)["key"]
    return {"id": tenant["id"], "admin": admin, "pk": pk}


@contextlib.contextmanager
def chromium():
    if not os.path.exists(CHROMIUM):
        raise SystemExit(f"{CHROMIUM} is missing: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def workdir(prefix: str):
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        yield Path(tmp)
