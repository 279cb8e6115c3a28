"""The decision write, answered without Flask's request cycle: POST /v1/subjects/{id}/consents.

A durable write cost about 1 ms of CPU, a third of it Flask's request cycle and marshmallow.
Like the fast reads (web/fastreads.py), this WSGI layer answers the common case itself and
hands everything else to Flask:

- answered here: a POST of exactly that path, no query string, ASCII path, no Origin header
  (a browser's call: CORS is Flask's), a JSON body (Content-Type application/json) that
  strict_json parses and that ``schemas.fast.decisions_in`` can tell marshmallow would
  accept, a credential that may write for the subject, and a service call that succeeds
  (with an Idempotency-Key too: the claim, the replay and the answer kept with the events go
  through the same functions as the decorator's, web/idempotency.py);
- handed to Flask: anything else, so every error keeps its one problem+json rendering and
  marshmallow's messages. What was learnt here travels along in the environ's Handover: the
  caller, or the error that authenticating, claiming or writing raised (Flask raises it again
  before claiming a key or reading the body); a body that might be invalid is handed over
  unjudged, for marshmallow to word the error. The body goes along in ``wsgi.input``.

The answer is the view's: the same function records the decisions (subjects.record_decisions),
the app's JSON provider writes the body, the headers are Flask's (tests/web/test_fast_writes.py
compares the two byte for byte), with the same access-log line, request id and metrics. It
sits inside RequestLimits (web/app.py), so the URI and body limits have been applied.
"""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.routing import Map

from consent_api.domain.evidence import evidence
from consent_api.domain.model import Scope
from consent_api.errors import ConsentApiError
from consent_api.security import strict_json
from consent_api.services import access, idempotency
from consent_api.services.deps import Deps
from consent_api.web import requestlog
from consent_api.web.auth import HANDOVER, Handover, parse_bearer
from consent_api.web.context import valid_idempotency_key
from consent_api.web.fastreads import Route, RouteTable, admitted, answered_fast, routes
from consent_api.web.ratelimit import ProcessWindows
from consent_api.web.schemas.fast import decisions_in
from consent_api.web.subjects import FAST_WRITES

REPLAYED = ("Idempotent-Replayed", "true")


class FastWrites:
    def __init__(self, flask_wsgi: Callable, extensions: dict[str, Any], url_map: Map,
                 windows: ProcessWindows | None, json: Any, max_body_bytes: int):
        self.flask_wsgi = flask_wsgi
        self.extensions = extensions
        self.routes = RouteTable(routes(url_map, FAST_WRITES))
        self.windows = windows
        self.json = json  # the app's provider: the body Flask would write
        self.max_body_bytes = max_body_bytes

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        found = self._route(environ)
        if found is None:
            return self.flask_wsgi(environ, start_response)
        route, path, subject_id = found
        return self._serve(environ, start_response, route, path, subject_id)

    def is_fast_write(self, environ: dict[str, Any]) -> bool:
        """Whether this layer would take the request up: the RSGI front runs it on the event loop."""
        return self._route(environ) is not None and _json(environ)

    def _route(self, environ: dict[str, Any]) -> tuple[Route, str, str] | None:
        if (environ.get("REQUEST_METHOD") != "POST" or environ.get("QUERY_STRING")
                or "HTTP_ORIGIN" in environ or "HTTP_TRANSFER_ENCODING" in environ):
            return None
        found = self.routes.match(environ.get("PATH_INFO", ""))
        if found is None:
            return None
        route, match = found
        return route, match.string, match.group("subject_id")

    def _serve(self, environ: dict[str, Any], start_response: Callable, route: Route, path: str,
               subject_id: str) -> Iterable[bytes]:
        started = time.perf_counter()
        body = self._body(environ)
        if body is None:
            return self.flask_wsgi(environ, start_response)
        answered = self._answer(environ, route, path, subject_id, body)
        environ["wsgi.input"] = io.BytesIO(body)  # read here: Flask reads it again if it answers
        if answered is None:
            return self.flask_wsgi(environ, start_response)
        who, status, data, extra = answered
        rid = requestlog.offered_or_new_id(environ.get("HTTP_X_REQUEST_ID", ""))
        start_response(f"{status} {HTTP_STATUS_CODES.get(status, 'UNKNOWN').upper()}",
                       [*route.headers, *extra, ("Content-Length", str(len(data))),
                        (requestlog.REQUEST_ID_HEADER, rid)])
        answered_fast(environ, "POST", route.rule, status, started, who, rid)
        return [data]

    def _body(self, environ: dict[str, Any]) -> bytes | None:
        """The request body when it is declared JSON of a length within the limit; else None."""
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return None
        if not _json(environ) or not 0 < length <= self.max_body_bytes:
            return None
        body = environ["wsgi.input"].read(length)
        return body if len(body) == length else None

    def _answer(self, environ: dict[str, Any], route: Route, path: str, subject_id: str,
                body: bytes) -> tuple[access.Principal, int, bytes, list[tuple[str, str]]] | None:
        """(caller, status, body, extra headers), or None for Flask to answer, told in a Handover
        what was learnt here."""
        token = parse_bearer(environ.get("HTTP_AUTHORIZATION", ""))
        if token is None:
            return None
        try:
            data = decisions_in(strict_json.loads(body))
        except strict_json.NotStrictJson:
            return None
        if data is None:
            return None
        d: Deps = self.extensions["consent_api.deps"]
        handover = environ[HANDOVER] = Handover()
        key = environ.get("HTTP_IDEMPOTENCY_KEY")
        who = claim = None
        try:
            who = admitted(environ, handover, d, token, self.windows)
            if who is None:
                return None  # Flask answers the 429
            tenant_id = who.require_subject(Scope.WRITE, subject_id)
            ev = evidence(environ.get("REMOTE_ADDR"), environ.get("HTTP_USER_AGENT"),
                          environ.get("HTTP_SEC_GPC") == "1")
            status, shape, record = route.answer
            if key is None:
                return who, status, self.json.body(shape(record(d, tenant_id, subject_id, data, ev, None))), []
            if not valid_idempotency_key(key):
                return None  # Flask words the error
            scope = who.credential_id or who.kind
            begun = idempotency.begin(d, tenant_id, scope, key, idempotency.request_hash("POST", path, body),
                                      subject_id)
            if isinstance(begun, idempotency.Replay):
                return who, begun.status, begun.body.encode("utf-8"), [REPLAYED]
            claim = begun
            claim.render = lambda result: (status, self.json.body(shape(result)).decode("utf-8"))
            result = record(d, tenant_id, subject_id, data, ev, claim)
            answered = claim.answered
            if answered is None:  # nothing the store kept with the events
                answered = claim.render(result)
                idempotency.finish(d, tenant_id, scope, key, *answered, _subject_ref(result))
            return who, answered[0], answered[1].encode("utf-8"), []
        except Exception as exc:  # every error is Flask's to render (and to log, when unexpected)
            if claim is not None and who is not None and who.tenant_id is not None:
                with contextlib.suppress(ConsentApiError):
                    idempotency.abandon(d, who.tenant_id, claim.scope, claim.key)
            handover.error = exc
            return None


def _json(environ: dict[str, Any]) -> bool:
    return environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower() == "application/json"


def _subject_ref(result: Any) -> str | None:
    events = getattr(result, "events", None) or []
    return events[0].get("subject_ref") if events else None

