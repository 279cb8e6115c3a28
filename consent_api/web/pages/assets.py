"""The pages' own static files (stylesheet, vendored scripts), served by the app under
/pages/static/ with a content-versioned URL: cached for a year when the version matches, never
from a CDN."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from flask import Blueprint, Response, abort, request, send_from_directory, url_for
from werkzeug.security import safe_join

STATIC_DIR = Path(__file__).with_name("static")
YEAR_S = 365 * 24 * 3600

bp = Blueprint("pages", __name__, template_folder="templates")


@cache
def version(filename: str) -> str:
    """The first 12 hex digits of the file's sha256: a new file is a new URL."""
    return hashlib.sha256((STATIC_DIR / filename).read_bytes()).hexdigest()[:12]


def asset_url(filename: str) -> str:
    return url_for("pages.asset", filename=filename, v=version(filename))


@bp.get("/pages/static/<path:filename>")
def asset(filename: str) -> Response:
    """A static file of the pages; immutable under its versioned URL."""
    found = safe_join(str(STATIC_DIR), filename)
    if found is None or not Path(found).is_file():
        abort(404)
    response = send_from_directory(STATIC_DIR, filename)
    if request.args.get("v") == version(filename):
        response.headers["Cache-Control"] = f"public, max-age={YEAR_S}, immutable"
    else:
        response.headers["Cache-Control"] = "no-cache"
    return response
