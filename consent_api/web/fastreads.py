"""The hot reads, answered without Flask's request cycle: GET /v1/subjects/{id}/consents/{purpose}
and GET /v1/subjects/{id}/consents.

Every push, location read and marketing send asks this one question, and under the production
server Flask's own machinery (request context, URL matching, three pairs of hooks, the
Response object) cost more than the answer: the check ran at 0.40x a bare Flask app's
requests/s. This WSGI layer answers the common case itself and hands everything else to Flask:

- answered here: a GET of exactly those paths, no query string (so never ?at=), ASCII path, a
  credential that may read the subject, a known subject and purpose, so a 200;
- handed to Flask untouched: anything else (another route, HEAD, a query string, an Origin
  header, i.e. a browser's call that needs CORS headers, a missing or wrong credential, an
  unknown subject or purpose, a store error), so every error keeps its one problem+json
  rendering.

The answer here is the same as Flask's (tests/web/test_fast_reads.py compares the two byte for
byte): the same service call and schema, the same access-log line, request id and metrics.
The rate limit counts the request once: the counted result travels to Flask in the WSGI
environ when the request is handed over. With a shared rate-limit storage (redis://,
mongodb://) flask-limiter counts, and this layer stands aside.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from consent_api.config import Settings
from consent_api.domain.model import Scope
from consent_api.services import access, consents
from consent_api.services.access import Principal
from consent_api.services.deps import Deps
from consent_api.web import metrics, requestlog, schemas
from consent_api.web.ratelimit import RATE_COUNTED, ProcessWindows

Answer = Callable[[Deps, str, str, str | None], dict[str, Any]]  # deps, tenant, subject, purpose


def _one_purpose(d: Deps, tenant_id: str, subject_id: str, purpose: str | None) -> dict[str, Any]:
    assert purpose is not None
    return {"purpose": purpose, **schemas.purpose_state_out(consents.one_purpose(d, tenant_id, subject_id, purpose))}


def _state(d: Deps, tenant_id: str, subject_id: str, _: str | None) -> dict[str, Any]:
    return schemas.state_out(consents.state(d, tenant_id, subject_id))


HEADERS = [("Content-Type", "application/json")]
# The state also answers browsers (CORS in web/public.py), so it varies by Origin like Flask's.
BROWSER_HEADERS = [*HEADERS, ("Vary", "Origin")]

# (path, the Flask rule it stands for, the answer, its headers): the same service call, schema
# and headers as the views in web/subjects.py
ROUTES: list[tuple[re.Pattern[str], str, Answer, list[tuple[str, str]]]] = [
    (re.compile(r"/v1/subjects/([^/]+)/consents/([^/]+)\Z"), "/v1/subjects/<subject_id>/consents/<purpose>",
     _one_purpose, HEADERS),
    (re.compile(r"/v1/subjects/([^/]+)/consents\Z()"), "/v1/subjects/<subject_id>/consents", _state,
     BROWSER_HEADERS),
]


class FastReads:
    def __init__(self, flask_wsgi: Callable, extensions: dict[str, Any], windows: ProcessWindows | None):
        self.flask_wsgi = flask_wsgi
        self.extensions = extensions  # the app's: deps and settings as the views see them, per request
        self.windows = windows

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        # A request with an Origin comes from a browser and needs Flask's CORS answer.
        if environ.get("REQUEST_METHOD") != "GET" or environ.get("QUERY_STRING") or "HTTP_ORIGIN" in environ:
            return self.flask_wsgi(environ, start_response)
        path = environ.get("PATH_INFO", "")
        if not path.startswith("/v1/subjects/") or not path.isascii():
            return self.flask_wsgi(environ, start_response)
        for pattern, rule, answer, headers in ROUTES:
            match = pattern.match(path)
            if match is not None:
                break
        else:
            return self.flask_wsgi(environ, start_response)
        started = time.perf_counter()
        answered = self._answer(environ, answer, match.group(1), match.group(2) or None)
        if answered is None:
            return self.flask_wsgi(environ, start_response)
        who, body = answered
        rid = requestlog.offered_or_new_id(environ.get("HTTP_X_REQUEST_ID", ""))
        start_response("200 OK", [*headers, ("Content-Length", str(len(body))),
                                  (requestlog.REQUEST_ID_HEADER, rid)])
        seconds = time.perf_counter() - started
        metrics.count_request("GET", rule, 200, seconds)
        requestlog.access_line("GET", rule, 200, seconds, who, environ.get("REMOTE_ADDR"), rid)
        return [body]

    def _answer(self, environ: dict[str, Any], answer: Answer, subject_id: str,
                purpose: str | None) -> tuple[Principal, bytes] | None:
        """The caller and the 200 body, or None for Flask to answer."""
        scheme, _, token = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        d: Deps = self.extensions["consent_api.deps"]
        settings: Settings = self.extensions["consent_api.settings"]
        try:
            who = access.authenticate(d.store, settings, d.clock, token.strip())
            if self.windows is not None:  # counted here, once, allowed or not
                over = environ[RATE_COUNTED] = self.windows.hit("cred:" + (who.credential_id or who.kind))
                if over:
                    return None  # Flask answers the 429
            tenant_id = who.require_subject(Scope.READ, subject_id)
            body = answer(d, tenant_id, subject_id, purpose)
        except Exception:  # every error is Flask's to render (and to log, when unexpected)
            return None
        return who, orjson.dumps(body) + b"\n"
