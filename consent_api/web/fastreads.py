"""The hot reads, answered without Flask's request cycle: GET /v1/subjects/{id}/consents/{purpose}
and GET /v1/subjects/{id}/consents.

Every push, location read and marketing send asks this one question, and under the production
server Flask's own machinery (request context, URL matching, three pairs of hooks, the
Response object) cost more than the answer: the check ran at 0.40x a bare Flask app's
requests/s. This WSGI layer answers the common case itself and hands everything else to Flask:

- answered here: a GET of exactly those paths, no query string (so never ?at=), ASCII path, a
  credential that may read the subject, a known subject and purpose, so a 200;
- handed to Flask: anything else (another route, HEAD, a query string, an Origin header, i.e.
  a browser's call that needs Flask's CORS headers (web/public.py), a missing or wrong
  credential, an unknown subject or purpose, a store error), so every error keeps its one
  problem+json rendering. What was learnt here travels along (web/auth.py's Handover): the
  caller, or the error that authenticating or answering raised, so Flask neither
  authenticates nor reads again.

The paths are the app's own rules for the endpoints in web/subjects.py's FAST_READS, answered
by the functions the views call, with the views' headers (tests/web/test_fast_reads.py compares
the two byte for byte), the same access-log line, request id and metrics. ``is_fast_read`` is
the same decision asked ahead of time: the RSGI front of `serve` (web/rsgi.py) runs exactly
these requests on its event loop, and hands every other one, a browser's included, to a thread.
The rate limit counts the request once: the counted result travels to Flask in the WSGI
environ when the request is handed over. With a shared rate-limit storage (redis://,
mongodb://) flask-limiter counts, and this layer stands aside.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import orjson
from werkzeug.routing import Map

from consent_api.domain.model import Scope
from consent_api.services import access
from consent_api.services.deps import Deps
from consent_api.web import metrics, requestlog
from consent_api.web.auth import HANDOVER, Handover, parse_bearer
from consent_api.web.public import SUBJECT_CORS_ENDPOINTS
from consent_api.web.ratelimit import RATE_COUNTED, ProcessWindows
from consent_api.web.subjects import FAST_READS

Answer = Callable[..., dict[str, Any]]  # (deps, tenant_id, **the URL's arguments) -> the 200 body
HEADERS = [("Content-Type", "application/json")]
# An endpoint that also answers browsers (CORS in web/public.py) varies by Origin, as Flask says.
BROWSER_HEADERS = [*HEADERS, ("Vary", "Origin")]


class Route(NamedTuple):
    pattern: re.Pattern[str]
    rule: str  # the Flask rule it stands for, as metrics and the access log name it
    answer: Any  # an Answer here; web/fastwrites.py's routes carry a subjects.FastWrite
    headers: list[tuple[str, str]]


def routes(url_map: Map, answers: dict[str, Any] = FAST_READS) -> list[Route]:
    """A Route for every endpoint of answers (FAST_READS, or web/fastwrites.py's) in url_map.

    A rule's ``<name>`` becomes a group matching what werkzeug's default converter matches: one
    path segment."""
    table = []
    for endpoint, answer in answers.items():
        headers = BROWSER_HEADERS if endpoint in SUBJECT_CORS_ENDPOINTS else HEADERS
        for rule in url_map.iter_rules(endpoint):
            pattern = re.sub(r"<(\w+)>", r"(?P<\1>[^/]+)", re.escape(rule.rule))
            table.append(Route(re.compile(pattern + r"\Z"), rule.rule, answer, headers))
    return table


class RouteTable:
    """The routes a fast layer answers, and the path prefixes that pass most paths by at once."""

    def __init__(self, table: list[Route]):
        self.routes = table
        self.prefixes = tuple({route.rule.split("<", 1)[0] for route in table})

    def match(self, path: str) -> tuple[Route, re.Match[str]] | None:
        if not path.startswith(self.prefixes) or not path.isascii():
            return None
        for route in self.routes:
            match = route.pattern.match(path)
            if match is not None:
                return route, match
        return None


def admitted(environ: dict[str, Any], handover: Handover, d: Deps, token: str,
             windows: ProcessWindows | None) -> access.Principal | None:
    """The caller, told to Flask in the handover, or None when its rate window is spent (the hit
    is counted here, once, allowed or not). Raises what authentication raises."""
    who = handover.principal = access.authenticate(d, token)
    if windows is not None:
        over = environ[RATE_COUNTED] = windows.hit("cred:" + (who.credential_id or who.kind))
        if over:
            return None
    return who


def answered_fast(environ: dict[str, Any], method: str, rule: str, status: int, started: float,
                  who: access.Principal, rid: str) -> None:
    """Count and log a request a fast layer answered itself, as Flask's hooks would have."""
    seconds = time.perf_counter() - started
    metrics.count_request(method, rule, status, seconds)
    requestlog.access_line(method, rule, status, seconds, who, environ.get("REMOTE_ADDR"), rid)


class FastReads:
    def __init__(self, flask_wsgi: Callable, extensions: dict[str, Any], url_map: Map,
                 windows: ProcessWindows | None):
        self.flask_wsgi = flask_wsgi
        self.extensions = extensions  # the app's: deps as the views see them, per request
        self.routes = RouteTable(routes(url_map))
        self.windows = windows

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        found = self._route(environ)
        if found is None:
            return self.flask_wsgi(environ, start_response)
        route, match = found
        return self._serve(environ, start_response, route, match.groupdict())

    def is_fast_read(self, environ: dict[str, Any]) -> bool:
        """Whether this layer would answer the request (given a credential that may): the
        question the RSGI front asks to run it on the event loop rather than hand it to a thread."""
        return self._route(environ) is not None

    def _route(self, environ: dict[str, Any]) -> tuple[Route, re.Match[str]] | None:
        if (environ.get("REQUEST_METHOD") != "GET" or environ.get("QUERY_STRING")
                or "HTTP_ORIGIN" in environ):  # a browser's call: Flask adds the CORS headers
            return None
        return self.routes.match(environ.get("PATH_INFO", ""))

    def _serve(self, environ: dict[str, Any], start_response: Callable, route: Route,
               args: dict[str, str]) -> Iterable[bytes]:
        started = time.perf_counter()
        answered = self._answer(environ, route.answer, args)
        if answered is None:
            return self.flask_wsgi(environ, start_response)
        who, body = answered
        rid = requestlog.offered_or_new_id(environ.get("HTTP_X_REQUEST_ID", ""))
        start_response("200 OK", [*route.headers, ("Content-Length", str(len(body))),
                                  (requestlog.REQUEST_ID_HEADER, rid)])
        answered_fast(environ, "GET", route.rule, 200, started, who, rid)
        return [body]

    def _answer(self, environ: dict[str, Any], answer: Answer,
                args: dict[str, str]) -> tuple[access.Principal, bytes] | None:
        """The caller and the 200 body, or None for Flask to answer, told in a Handover what
        was learnt here so that it neither authenticates nor reads again."""
        token = parse_bearer(environ.get("HTTP_AUTHORIZATION", ""))
        if token is None:
            return None
        d: Deps = self.extensions["consent_api.deps"]
        handover = environ[HANDOVER] = Handover()
        try:
            who = admitted(environ, handover, d, token, self.windows)
            if who is None:
                return None  # Flask answers the 429
            tenant_id = who.require_subject(Scope.READ, args["subject_id"])
            body = answer(d, tenant_id, **args)
        except Exception as exc:  # every error is Flask's to render (and to log, when unexpected)
            handover.error = exc
            return None
        return who, orjson.dumps(body) + b"\n"
