"""The console (/console/): pages for privacy officers and auditors, signed in with a tenant's
secret API key whose scopes decide what is shown and allowed (DESIGN.md §9.4, hooks §9.7).

    __init__.py   the page set, sign-in and sign-out, officer(): the signed-in key, checked live
    overview.py   charts of the per-day counters, each with its table and CSV
    subjects.py   look-up, state, history timeline with the chain verified, receipts, erasure
    catalog.py    purposes, policies, vendors
    keys.py       API keys and subject-token keys (secrets shown once)
    audit.py      export with filters, its manifest and the JWKS, offline verification
    webhooks.py   webhook endpoints, their delivery log, retry and replay
    requests.py   the rights-request queue by deadline, a request and its answers

The key itself never reaches the browser: sign-in stores only the key's id and scopes in the
server-side session (web/pages/), and every request checks that the key is still unrevoked.
Pages built on the pages foundation: HttpOnly SameSite=Strict cookie, CSRF on every POST,
30-minute idle timeout, locale from ?lang= or Accept-Language.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, redirect, request

from consent_api.domain.clock import parse_ts
from consent_api.domain.model import ApiKey, PageKind, Purpose
from consent_api.errors import Forbidden, Unauthorized
from consent_api.services import console
from consent_api.services.console import Rights
from consent_api.web import pages
from consent_api.web.context import deps
from consent_api.web.pages import history, i18n

PREFIX = "/console"
CONSOLE = pages.PageSet("console", PREFIX, PageKind.CONSOLE, same_site="Strict", catalogs=("console", "history"),
                        signed_out=lambda: redirect(PREFIX + "/sign-in"))
bp = CONSOLE.blueprint(__name__, template_folder="templates")


@dataclass(frozen=True)
class Officer:
    """Who is signed in: the tenant, the key (unrevoked at this request) and its rights."""

    tenant_id: str
    key: ApiKey
    rights: Rights


def officer() -> Officer:
    """The signed-in officer; the sign-in page when there is none or the key was revoked since."""
    who = pages.identity()
    assert who.tenant_id is not None
    key = console.live_key(deps(), who.tenant_id, who.key_id)
    if key is None:
        pages.sign_out()
        raise pages.SignedOut("the key this session signed in with was revoked")
    return Officer(who.tenant_id, key, Rights(key.scopes))


def admin() -> Officer:
    """The signed-in officer, when its key may change data; 403 otherwise."""
    who = officer()
    who.rights.require(who.rights.admin)
    return who


def render(template: str, status: int = 200, who: Officer | None = None, **context: Any) -> Response:
    """A console page; signed-in pages pass who, for the navigation and what it may show."""
    return pages.render(template, status=status, officer=who, rights=who.rights if who else None,
                        nav=NAV, here=request.endpoint, when=when, title_of=title_of, due_day=history.due_day,
                        point_name=lambda point: history.point_name(point, pages.locale()), **context)


def when(stamp: str | None) -> str:
    """A stored RFC 3339 time as people read it here (China Standard Time)."""
    return i18n.format_datetime(parse_ts(stamp), pages.locale()) if stamp else "–"


def title_of(purpose: Purpose) -> str:
    """A purpose's title in the page's language (English, else its key, when it has none)."""
    return purpose.title.get(pages.locale()) or purpose.title.get("en") or purpose.key


# (endpoint, text key, shown when) for the navigation
NAV = (
    ("console.overview", "nav.overview", "read"),
    ("console.subjects", "nav.subjects", "read"),
    ("console.purposes", "nav.catalog", "read"),
    ("console.keys", "nav.keys", "admin"),
    ("console.webhooks", "nav.webhooks", "admin"),
    ("console.requests", "nav.requests", "read"),
    ("console.audit", "nav.audit", "export"),
)


@bp.get("/sign-in")
def sign_in_page():
    found = pages.session()
    if found is not None and found.tenant_id is not None:
        return redirect(PREFIX + "/")
    return render("console/sign_in.html", signed_out=request.args.get("signed_out") == "1")


@bp.post("/sign-in")
def sign_in():
    try:
        key = console.sign_in(deps(), request.form.get("api_key", ""))
    except (Unauthorized, Forbidden) as exc:
        return render("console/sign_in.html", status=exc.status, error=exc.status)
    pages.sign_in(tenant_id=key.tenant_id, key_id=key.id, scopes=key.scopes)
    return redirect(PREFIX + "/")


@bp.post("/sign-out")
def sign_out():
    pages.sign_out()
    return redirect(PREFIX + "/sign-in?signed_out=1")


def init_app(app: Flask) -> None:
    CONSOLE.register(app, bp)


# The pages, each module adding its routes to bp (imported last: they use what is above).
from consent_api.web.console import audit, catalog, keys, overview, requests, subjects, webhooks  # noqa: E402,F401
