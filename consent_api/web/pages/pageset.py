"""A page set: one blueprint under one prefix, with its own session cookie, a CSRF check on every
POST, the locale negotiated per request, and the helpers its views use.

    privacy = PageSet("privacy", "/privacy", PageKind.PRIVACY, same_site="Lax", catalogs=("privacy",))
    bp = privacy.blueprint(__name__)

    @bp.get("/")
    def home():
        who = identity()                       # the signed-in session, or SignedOut (401 page)
        return render("privacy/home.html", state=...)

    def init_app(app):
        privacy.register(app, bp)

Before each view of the blueprint the session is read from the cookie (an expired one is
deleted and its cookie cleared), ``?lang=`` is remembered in it, and a POST whose form lacks the
session's ``csrf_token`` is refused with a 403 page before the view runs: nothing changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Flask, Response, current_app, g, render_template, request

from consent_api.domain.model import PageSession
from consent_api.errors import Forbidden, Unauthorized
from consent_api.services import sessions
from consent_api.services.sessions import SessionRules
from consent_api.web.context import deps, settings
from consent_api.web.pages import i18n
from consent_api.web.pages.assets import asset_url

REGISTRY = "consent_api.page_sets"  # app.extensions: {name: PageSet}
CSRF_FIELD = "csrf_token"
# Nothing inline, nothing from another origin; a page set adds only what a page truly needs.
CSP = ("default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
PAGE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
}
_CLEAR = ""  # g.page_cookie: clear the cookie; a token: set it


class SignedOut(Unauthorized):
    """A page that needs a signed-in session was asked for without one."""


class CsrfRefused(Forbidden):
    """A POST without its session's CSRF token."""


@dataclass
class PageSet:
    name: str  # blueprint name, endpoint prefix and cookie name part: "privacy", "console"
    prefix: str  # URL prefix and the cookie's Path: "/privacy"
    kind: str  # the session kind (domain.model.PageKind)
    same_site: str = "Strict"  # "Lax" for pages opened from an app or a link in a mail
    rules: SessionRules = field(default_factory=SessionRules)
    catalogs: tuple[str, ...] = ()  # its text catalogs, searched before "common"
    # The answer for a page that needs a signed-in session and has none (the console sends the
    # browser to its sign-in page); None: the 401 page.
    signed_out: Callable[[], Any] | None = None
    csp: str = CSP

    @property
    def cookie_name(self) -> str:
        return f"consent_{self.name}"

    @property
    def all_catalogs(self) -> tuple[str, ...]:
        return (*self.catalogs, "common")

    def owns(self, path: str) -> bool:
        return path == self.prefix or path.startswith(self.prefix + "/")

    def blueprint(self, import_name: str, **options: Any) -> Blueprint:
        bp = Blueprint(self.name, import_name, url_prefix=self.prefix, **options)
        bp.before_request(self._before)
        return bp

    def register(self, app: Flask, bp: Blueprint) -> None:
        """Serve the blueprint; from now on the pages' headers and error pages apply under prefix."""
        app.register_blueprint(bp)
        app.extensions.setdefault(REGISTRY, {})[self.name] = self

    def _before(self) -> None:
        d = deps()
        g.page_set = self
        token = request.cookies.get(self.cookie_name)
        found = sessions.resume(d, self.kind, self.rules, token)
        asked = i18n.normalize(request.args.get("lang"))
        if found is not None:
            found = sessions.touch(d, found, asked)
        elif token is not None:
            g.page_cookie = _CLEAR  # it opens nothing: stop sending it
        g.page_session = found
        g.page_locale = i18n.negotiate(asked, found.locale if found else None,
                                       request.accept_languages.values())
        if request.method == "POST" and not sessions.csrf_matches(found, request.form.get(CSRF_FIELD)):
            raise CsrfRefused("the form's csrf_token is missing or not this session's; reload the page")


# --- what views use ------------------------------------------------------------------------------

def page_sets(app: Flask) -> dict[str, PageSet]:
    return app.extensions.get(REGISTRY, {})


def page_set_for(path: str) -> PageSet | None:
    """The page set serving path, if any."""
    return next((ps for ps in page_sets(current_app).values() if ps.owns(path)), None)


def current() -> PageSet:
    found = g.get("page_set") or page_set_for(request.path)
    assert found is not None, "not a page request"
    return found


def session() -> PageSession | None:
    """The browser's live session of this page set, with or without an identity."""
    return g.get("page_session")


def identity() -> PageSession:
    """The signed-in session; SignedOut (the 401 page, or the page set's answer) without one."""
    found = session()
    if found is None or found.tenant_id is None:
        raise SignedOut("this page needs a signed-in session")
    return found


def locale() -> str:
    found = g.get("page_locale")
    if found is None:  # an error page outside the blueprint: no session was read
        found = g.page_locale = i18n.negotiate(i18n.normalize(request.args.get("lang")), None,
                                               request.accept_languages.values())
    return found


def t(key: str, **params: Any) -> str:
    """The text of key in the page's locale."""
    return i18n.text(key, locale(), current().all_catalogs, **params)


def csrf_token() -> str:
    """The session's CSRF token for a form; a browser without a session gets one without an
    identity (a sign-in form's), so every form carries a token."""
    found = session()
    if found is None:
        ps = current()
        started = sessions.start(deps(), ps.kind, ps.rules, locale=locale())
        g.page_session, g.page_cookie = started.session, started.token
        found = started.session
    return found.csrf


def sign_in(*, tenant_id: str, subject_id: str | None = None, key_id: str | None = None,
            scopes: tuple[str, ...] = ()) -> PageSession:
    """Start a session with this identity in a new cookie; the browser's old session ends."""
    ps = current()
    started = sessions.rotate(deps(), ps.kind, ps.rules, session(), tenant_id=tenant_id,
                              subject_id=subject_id, key_id=key_id, scopes=scopes, locale=g.get("page_locale"))
    g.page_session, g.page_cookie = started.session, started.token
    return started.session


def sign_out() -> None:
    """End the session on the server and clear the cookie."""
    found = session()
    if found is not None:
        sessions.end(deps(), found)
    g.page_session, g.page_cookie = None, _CLEAR


def locale_url(target: str) -> str:
    """This page in another locale; a page answering a POST links to the set's home instead."""
    path = request.path if request.method == "GET" else current().prefix + "/"
    args = request.args.to_dict() if request.method == "GET" else {}
    return path + "?" + urlencode({**args, "lang": target})


def render(template: str, status: int = 200, **context: Any) -> Response:
    """A page of the current set in the request's locale."""
    html = render_template(
        template, t=t, locale=locale(), locales=i18n.LOCALES, locale_names=i18n.LOCALE_NAMES,
        locale_url=locale_url, csrf_token=csrf_token, csrf_field=CSRF_FIELD, asset_url=asset_url,
        page_set=current(), format_datetime=lambda moment: i18n.format_datetime(moment, locale()),
        format_date=lambda day: i18n.format_date(day, locale()), **context)
    return Response(html, status=status, mimetype="text/html")


# --- every page answer -----------------------------------------------------------------------------

def finish(response: Response) -> Response:
    """The session cookie, if it changed, and the pages' headers; for responses under a prefix."""
    ps = g.get("page_set") or page_set_for(request.path)
    if ps is None:
        return response
    cookie = g.get("page_cookie")
    secure = request.is_secure or settings().page_cookie_secure == "always"
    if cookie == _CLEAR:
        response.delete_cookie(ps.cookie_name, path=ps.prefix, secure=secure, httponly=True,
                               samesite=ps.same_site)
    elif cookie is not None:
        # No Max-Age: the server ends the session; the browser forgets the cookie when it closes.
        response.set_cookie(ps.cookie_name, cookie, path=ps.prefix, secure=secure, httponly=True,
                            samesite=ps.same_site)
    for name, value in PAGE_HEADERS.items():
        response.headers[name] = value
    response.headers["Content-Security-Policy"] = ps.csp
    response.vary.update(("Cookie", "Accept-Language"))
    return response
