"""Shared by the bench scripts: a live `consent-api serve`, a static page server on another
origin (gzip like any production web server), a demo tenant made over HTTP, Debian's
chromium through Playwright, and the screenshot scripts' --out folder. The server, the tenant
and the browser come from tests/support, so they start exactly as in the end-to-end tests."""

from __future__ import annotations

import argparse
import contextlib
import gzip
import sys
import tempfile
from http.server import SimpleHTTPRequestHandler
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the scripts run as files: make this checkout's packages importable

from tests import builders  # noqa: E402
from tests.support import servers  # noqa: E402
from tests.support.api import Api, HttpClient, Tenant  # noqa: E402
from tests.support.chromium import CHROMIUM, chromium  # noqa: E402

__all__ = ["CHROMIUM", "REPO", "VENDOR", "VENDOR_ZH", "api_server", "chromium", "fetch", "make_tenant",
           "page_server", "workdir"]
VENDOR, VENDOR_ZH = builders.WEB_VENDOR, builders.WEB_VENDOR_ZH


def fetch(api: str, path: str) -> bytes:
    """The body of the API's 200 answer to GET path."""
    return Api(HttpClient(api)).get(path, expect=200).get_data()


@contextlib.contextmanager
def api_server(workdir: Path):
    """`consent-api serve` on a free port with a fresh SQLite file; yields its base URL."""
    with servers.serving(workdir, workers=1) as server:
        yield server.url


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

    with servers.serving_files(Handler) as origin:
        yield origin


def make_tenant(api: str, origin: str, vendor: dict = VENDOR) -> Tenant:
    """A tea shop with the usual web purposes, a material policy, a vendor and a publishable
    key for origin (``tenant.publishable``)."""
    tenant = Api(HttpClient(api)).new_tenant("Tea shop", purposes=None)
    tenant.set_up_banner(origin, vendor)
    return tenant


@contextlib.contextmanager
def workdir(prefix: str):
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        yield Path(tmp)


def screenshots_dir(doc: str) -> Path:
    """The folder a screenshot script writes to (its --out, docs/screenshots by default), made
    if missing; doc is the script's docstring, whose first paragraph is its --help."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    return out
