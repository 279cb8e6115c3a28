"""Request bodies before the app sees them: the RSGI front of `consent-api serve` (deadline,
size limit whatever the transfer encoding, the environ it builds) and the WSGI middleware that
bounds bodies of unknown length under any other server."""

from __future__ import annotations

import asyncio
import io
import json
import threading
from dataclasses import replace

import pytest

from consent_api.config import Settings
from consent_api.web import rsgi
from consent_api.web.rsgi import BufferedWSGI, environ_for
from tests import builders
from tests.support.apps import STORE_URLS


class Headers(dict):
    def items(self):  # RSGI headers: lower-case names, a repeated header once per value,
        # values that are not visible ASCII (None here) left out
        return [(k, v) for k, values in super().items()
                for v in (values if isinstance(values, list) else [values]) if v is not None]

    def __len__(self):
        return len(self.keys())

    def get(self, key, default=None):
        value = super().get(key, default)
        return value[0] if isinstance(value, list) else value


class Scope:
    proto = "http"
    http_version = "1.1"
    server = "127.0.0.1:8000"
    client = "10.1.2.3:5555"
    scheme = "http"
    query_string = "a=1"

    def __init__(self, method="POST", path="/echo", headers=None):
        self.method, self.path, self.headers = method, path, Headers(headers or {})


class Protocol:
    """An RSGI HTTP protocol fed from a list of chunks (None: the client stalls): read whole by
    awaiting it, or chunk by chunk by iterating it."""

    def __init__(self, chunks=()):
        self.chunks = list(chunks)
        self.answer = None

    async def __call__(self):
        body = b""
        async for chunk in self._gen():
            body += chunk
        return body

    def __aiter__(self):
        return self._gen()

    async def _gen(self):
        for chunk in self.chunks:
            if chunk is None:
                await asyncio.sleep(3600)
            yield chunk

    def response_bytes(self, status, headers, body):
        self.answer = (status, dict(headers), body)


def echo_app(environ, start_response):
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("content-type", "application/json")])
    seen = {k: v for k, v in environ.items() if isinstance(v, str)}
    return [json.dumps({"body": body.decode("latin-1"), "environ": seen}).encode()]


def run_async(coroutine) -> None:
    """Run a coroutine to its end on a loop of its own thread (another test's loop may be
    running in this one: Playwright's, for one)."""
    failure = []

    def run():
        try:
            asyncio.run(coroutine)
        except BaseException as exc:  # re-raised in the test's thread
            failure.append(exc)

    worker = threading.Thread(target=run, name="event-loop")
    worker.start()
    worker.join()
    if failure:
        raise failure[0]


def serve(scope, protocol, max_body=100, timeout=0.2):
    front = BufferedWSGI(echo_app, threads=2, max_body_bytes=max_body, body_timeout_s=timeout)
    try:
        run_async(front.__rsgi__(scope, protocol))
    finally:
        front.pool.shutdown()
    return protocol.answer


def test_a_stalled_body_gets_408_and_the_connection_closes():
    status, headers, body = serve(Scope(headers={"content-length": "10"}), Protocol([b"abc", None]))
    assert status == 408 and headers["connection"] == "close"
    assert headers["content-type"] == "application/problem+json"
    assert json.loads(body)["status"] == 408


@pytest.mark.parametrize("headers, chunks", [
    ({"content-length": "101"}, []),  # declared: refused before a byte is read
    ({"transfer-encoding": "chunked"}, [b"x" * 60, b"y" * 60]),  # counted
    ({"transfer-encoding": "chunked", "content-length": "5"}, [b"x" * 101]),
])
def test_bodies_over_the_limit_get_413_whatever_the_encoding(headers, chunks):
    status, answer_headers, body = serve(Scope(headers=headers), Protocol(chunks))
    assert status == 413 and answer_headers["connection"] == "close"
    assert json.loads(body)["type"].endswith("/payload-too-large")


def test_the_app_sees_a_complete_dechunked_body_and_a_pep3333_environ():
    scope = Scope(path="/v1/subjects/é", headers={
        "transfer-encoding": "chunked", "content-type": "application/json", "x-a": ["1", "2"]})
    status, _, body = serve(scope, Protocol([b"{", b'"a": 1}']))
    seen = json.loads(body)
    assert status == 200 and seen["body"] == '{"a": 1}'
    environ = seen["environ"]
    assert environ["CONTENT_LENGTH"] == "8" and "HTTP_TRANSFER_ENCODING" not in environ
    assert environ["CONTENT_TYPE"] == "application/json" and environ["HTTP_X_A"] == "1,2"
    assert environ["PATH_INFO"] == "/v1/subjects/é".encode().decode("latin-1")
    assert environ["REMOTE_ADDR"] == "10.1.2.3" and environ["QUERY_STRING"] == "a=1"


def test_a_header_whose_value_is_not_ascii_is_present_and_empty():
    environ = environ_for(Scope(method="GET", headers={"idempotency-key": None, "x-a": "1"}), b"")
    assert environ["HTTP_IDEMPOTENCY_KEY"] == "" and environ["HTTP_X_A"] == "1"


def test_ipv6_addresses_lose_their_brackets():
    scope = Scope(method="GET")
    scope.client, scope.server = "[::1]:5555", "[::1]:8000"
    environ = environ_for(scope, b"")
    assert environ["REMOTE_ADDR"] == "::1" and environ["SERVER_NAME"] == "::1"


@pytest.fixture
def settings(settings) -> Settings:
    return replace(settings, max_body_bytes=2048)


def test_a_chunked_body_over_the_limit_is_refused_under_any_wsgi_server(tenant):
    body = json.dumps(builders.consents(builders.decision("push"))).encode()
    padded = body + b" " * (2048 - len(body)) + b"junk" * 50
    for data, expected in ((padded, 413), (body, 201)):
        response = tenant.client.post(
            "/v1/subjects/chunky/consents", input_stream=io.BytesIO(data),
            headers={**tenant.headers, "Content-Type": "application/json", "Transfer-Encoding": "chunked"})
        assert response.status_code == expected, response.get_data()
        if expected == 413:
            assert response.mimetype == "application/problem+json"
            assert tenant.get("/v1/subjects/chunky/consents").status_code == 404


def test_a_uri_over_the_limit_gets_414_as_a_problem(client, tenant):
    for path in ("/v1/purposes?cursor=" + "A" * rsgi.MAX_URI_BYTES,
                 "/v1/subjects/" + "u" * rsgi.MAX_URI_BYTES + "/consents"):
        response = client.get(path, headers=tenant.headers)
        assert response.status_code == 414 and response.mimetype == "application/problem+json"
        assert response.json["status"] == 414
    status, headers, body = serve(Scope(method="GET", path="/" + "a" * rsgi.MAX_URI_BYTES), Protocol())
    assert status == 414 and json.loads(body)["type"].endswith("/uri-too-long")


def test_doubled_slashes_redirect_with_a_problem_body(client, tenant):
    response = client.get("/v1//purposes", headers=tenant.headers)
    assert response.status_code == 308 and response.headers["Location"].endswith("/v1/purposes")
    assert response.mimetype == "application/problem+json"
    assert response.json["status"] == 308 and "/v1/purposes" in response.json["detail"]


def test_only_quick_bodiless_requests_run_on_the_event_loop():
    def where(environ, start_response):
        environ["wsgi.input"].read()
        start_response("200 OK", [("content-type", "text/plain")])
        return [threading.current_thread().name.encode()]

    front = BufferedWSGI(where, threads=1, max_body_bytes=100, body_timeout_s=1,
                         inline=lambda environ: environ["PATH_INFO"] == "/quick")
    try:
        for scope, protocol, thread in (
                (Scope(method="GET", path="/quick"), Protocol(), "event-loop"),
                (Scope(method="GET", path="/other"), Protocol(), "wsgi"),
                (Scope(method="POST", path="/quick", headers={"content-length": "2"}), Protocol([b"{}"]), "wsgi")):
            run_async(front.__rsgi__(scope, protocol))
            assert protocol.answer[2].decode().startswith(thread), (scope.path, protocol.answer)
    finally:
        front.pool.shutdown()


def bodiless(method: str, path: str, query: str = "", headers: dict[str, str] | None = None) -> Scope:
    scope = Scope(method=method, path=path, headers=headers)
    scope.query_string = query
    return scope


def test_the_app_names_its_quick_requests_only_on_a_local_store(app, new_app):
    def quick(method: str, path: str, query: str = "", **headers: str) -> bool:
        return app.extensions[rsgi.INLINE](environ_for(bodiless(method, path, query, headers), b""))

    # on SQLite
    assert quick("GET", "/v1/subjects/u1/consents/push") and quick("GET", "/v1/subjects/u1/consents")
    assert not quick("GET", "/v1/subjects/u1/consents", "at=x") and not quick("POST", "/v1/subjects/u1/consents")
    assert not quick("GET", "/v1/subjects/u1/history") and not quick("GET", "/v1/audit/events")
    # a browser's read needs Flask's CORS headers: the fast reads hand it over, so it is not quick
    assert not quick("GET", "/v1/subjects/u1/consents", origin=builders.ORIGIN)
    assert rsgi.INLINE not in new_app(database_url=STORE_URLS["mongomock"]).extensions


def test_a_browsers_read_runs_on_a_thread_and_gets_its_cors_headers(app, app_tenant):
    """The RSGI front and the fast reads agree: a hot read with an Origin is answered by Flask
    (CORS), on a pool thread; the same read without one by the fast reads, on the event loop."""
    app_tenant.grant("u-1", "personalized_push")
    threads = []

    def recording(environ, start_response):
        threads.append(threading.current_thread().name)
        return app(environ, start_response)

    front = BufferedWSGI(recording, threads=1, max_body_bytes=100, body_timeout_s=1,
                         inline=app.extensions[rsgi.INLINE])
    token = app_tenant.subject_token("u-1")
    try:
        for origin, thread in ((builders.ORIGIN, "wsgi"), (None, "event-loop")):
            headers = {"authorization": f"Bearer {token}", **({"origin": origin} if origin else {})}
            protocol = Protocol()
            run_async(front.__rsgi__(bodiless("GET", "/v1/subjects/u-1/consents", headers=headers), protocol))
            status, answer_headers, body = protocol.answer
            assert status == 200 and json.loads(body)["purposes"]["personalized_push"]["allowed"] is True
            assert threads[-1].startswith(thread), (origin, threads)
            assert answer_headers.get("Access-Control-Allow-Origin") == origin
            assert "Origin" in answer_headers["Vary"]
    finally:
        front.pool.shutdown()
