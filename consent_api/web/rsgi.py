"""The production server's front door: granian's RSGI interface in front of the WSGI app.

Under granian's WSGI interface a request body is read from inside the WSGI call, on one of the
worker's few blocking threads, and that read has no deadline (granian offers none for bodies).
A few dozen clients trickling bodies a byte at a time then held every thread, and every other
request, health checks included, waited behind them. Here the body is received on the worker's
event loop, where a waiting connection costs a coroutine rather than a thread:

- the whole body must arrive within ``body_timeout_s`` of the request's start, else 408;
- a body over ``max_body_bytes`` (declared or counted, chunked or not) is refused with 413
  as soon as that is known, without reading the rest;
- both answers close the connection (the rest of the body is never read);
- only then does the WSGI app run, on a pool of ``threads`` threads, with the body in memory
  and ``CONTENT_LENGTH`` set (a chunked body reaches the app de-chunked and complete).

So the threads only ever hold complete requests, and a body the app does not read (an early
401, 403 or 429) never leaves bytes on a kept-alive connection.

Handing a request to a thread and its answer back costs more than a consent check itself
(a bare Flask app answered about half as many requests as under granian's WSGI interface).
So the requests an app names as quick and never blocking (a Flask app's ``extensions[INLINE]``:
the hot consent reads on a local SQLite file, web/fastreads.py) run on the event loop itself,
as under an async server; they take no body, so no client can make them wait. The requests it
names in ``extensions[ON_LOOP]`` (the decision write on a local SQLite file, web/fastwrites.py),
which are quick but for a wait on another thread (the group commit), run on the event loop too,
once their body is in, each in a greenlet that hands the loop back while it waits
(consent_api/suspend.py).
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from importlib import import_module
from typing import Any

from consent_api import suspend
from consent_api.errors import PayloadTooLarge
from consent_api.web.metrics import UNMATCHED, count_request
from consent_api.web.problems import PROBLEM_JSON, TYPE_BASE

log = logging.getLogger("consent_api")
SERVE_ENV = "CONSENT_SERVE_WSGI"  # set by `consent-api serve` for its workers: target, threads
MAX_URI_BYTES = 8192  # path and query; the longest this API's clients send is well under 1 KiB
INLINE = "consent_api.inline"  # extensions key: (the request's environ) -> run on the event loop?
# extensions key: (environ with its body) -> run on the event loop in a greenlet that waits for
# other threads without blocking the loop (consent_api/suspend.py)?
ON_LOOP = "consent_api.on_loop"
STREAM_BATCH = 256 * 1024  # a streamed answer goes out in pieces of about this size
NO_BODY = frozenset({"GET", "HEAD", "OPTIONS", "DELETE", "TRACE"})
SECURITY_HEADERS = [("x-content-type-options", "nosniff"), ("cache-control", "no-store")]


class BodyRefused(Exception):
    """The request is not taken: the answer to send instead (408, 413 or 414)."""

    def __init__(self, status: int, title: str, slug: str, detail: str):
        super().__init__(detail)
        self.status, self.title, self.slug, self.detail = status, title, slug, detail

    def answer(self) -> tuple[int, list[tuple[str, str]], bytes]:
        body = json.dumps({"type": TYPE_BASE + self.slug, "title": self.title, "status": self.status,
                           "detail": self.detail}).encode("utf-8")
        return self.status, [("content-type", PROBLEM_JSON), ("connection", "close"),
                             *SECURITY_HEADERS], body


async def receive_body(method: str, headers: Any, chunks: Any, max_bytes: int) -> bytes:
    """The whole request body from an RSGI protocol (awaited whole, or an async iterator of
    chunks); BodyRefused when it is larger than max_bytes. The caller bounds the time it may take."""
    declared = headers.get("content-length")
    chunked = "transfer-encoding" in headers
    if declared is None and not chunked:
        return b""
    if declared is not None and not chunked:
        try:
            size = int(declared)
        except ValueError:
            size = -1
        if size < 0:
            raise BodyRefused(400, "Bad request", "bad-request", "Content-Length is not a number")
        if size > max_bytes:
            raise too_large(max_bytes)
        if size == 0:
            return b""
        # Framed by its declared length, within the limit: taken whole, in one call (iterating
        # chunk by chunk cost a decision write ~5% of its CPU); the caller's deadline bounds it.
        return bytes(await chunks())
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > max_bytes:
            raise too_large(max_bytes)
    return bytes(body)


def uri_too_long() -> BodyRefused:
    return BodyRefused(414, "URI too long", "uri-too-long",
                       f"the path and query string are limited to {MAX_URI_BYTES} bytes")


def too_large(max_bytes: int) -> BodyRefused:
    return BodyRefused(PayloadTooLarge.status, PayloadTooLarge.title, PayloadTooLarge.type_slug,
                       f"request bodies are limited to {max_bytes} bytes")


def environ_for(scope: Any, body: bytes) -> dict[str, Any]:
    """The PEP 3333 environ of an RSGI scope whose body has been received whole."""
    server_host, _, server_port = scope.server.rpartition(":")
    client_host = scope.client.rpartition(":")[0]
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope.method,
        "SCRIPT_NAME": "",
        # RSGI gives the percent-decoded path as text; WSGI wants its UTF-8 bytes as latin-1
        "PATH_INFO": scope.path.encode("utf-8").decode("latin-1"),
        "QUERY_STRING": scope.query_string,
        "SERVER_NAME": server_host.strip("[]"),
        "SERVER_PORT": server_port,
        "SERVER_PROTOCOL": "HTTP/" + scope.http_version,
        "REMOTE_ADDR": client_host.strip("[]"),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.scheme,
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    headers = scope.headers
    names = set()
    for name, value in headers.items():
        names.add(name)
        if name == "content-length" or name == "transfer-encoding":
            continue  # the body is complete and de-chunked: its length is set below
        key = "CONTENT_TYPE" if name == "content-type" else "HTTP_" + name.upper().replace("-", "_")
        environ[key] = environ[key] + "," + value if key in environ else value
    if len(names) != len(headers):
        # items() leaves out values that are not visible ASCII (obs-text); such a header is
        # present but empty, as under granian's WSGI interface, so that it is refused rather
        # than ignored (an Idempotency-Key the client thinks it sent)
        for name in headers:
            if name not in names and name not in ("content-length", "transfer-encoding"):
                key = "CONTENT_TYPE" if name == "content-type" else "HTTP_" + name.upper().replace("-", "_")
                environ[key] = ""
    if body or scope.method not in NO_BODY:
        environ["CONTENT_LENGTH"] = str(len(body))
        environ["wsgi.input_terminated"] = True
    return environ


class _Answer:
    """What the WSGI app said: status, headers and the first piece of the body; `rest` is the
    iterator still to drain when the body is larger than one piece."""

    __slots__ = ("status", "headers", "data", "rest", "close")

    def __init__(self) -> None:
        self.status = 500
        self.headers: list[tuple[str, str]] = []
        self.data = b""
        self.rest: Iterator[bytes] | None = None
        self.close: Callable[[], None] | None = None


def _pull(chunks: Iterator[bytes]) -> tuple[bytes, bool]:
    """The next piece of a streamed body, and whether the stream ended."""
    parts, size = [], 0
    for chunk in chunks:
        parts.append(chunk)
        size += len(chunk)
        if size >= STREAM_BATCH:
            return b"".join(parts), False
    return b"".join(parts), True


class BufferedWSGI:
    """An RSGI application running a WSGI app on a thread pool once its request body is in."""

    def __init__(self, wsgi_app: Callable, *, threads: int, max_body_bytes: int, body_timeout_s: float,
                 inline: Callable[[dict[str, Any]], bool] | None = None,
                 on_loop: Callable[[dict[str, Any]], bool] | None = None):
        self.wsgi_app = wsgi_app
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="wsgi")
        self.max_body_bytes = max_body_bytes
        self.body_timeout_s = body_timeout_s
        self.inline = inline
        self.on_loop = on_loop

    def __rsgi_del__(self, loop: Any) -> None:
        self.pool.shutdown(wait=True)

    async def __rsgi__(self, scope: Any, protocol: Any) -> None:
        if scope.proto != "http":
            return
        if len(scope.path) + len(scope.query_string) > MAX_URI_BYTES:
            return self._refuse(scope, protocol, uri_too_long())
        try:
            async with asyncio.timeout(self.body_timeout_s):
                body = await receive_body(scope.method, scope.headers, protocol, self.max_body_bytes)
        except TimeoutError:
            return self._refuse(scope, protocol, BodyRefused(
                408, "Request timeout", "request-timeout",
                f"the request body did not arrive within {self.body_timeout_s:g} s"))
        except BodyRefused as refused:
            return self._refuse(scope, protocol, refused)
        except Exception:  # the client went away while sending
            return None
        loop = asyncio.get_running_loop()
        environ = environ_for(scope, body)
        try:
            if not body and self.inline is not None and self.inline(environ):
                answer = self._run(environ)
            elif self.on_loop is not None and self.on_loop(environ):
                answer = await suspend.start(self._run, environ)
            else:
                answer = await loop.run_in_executor(self.pool, self._run, environ)
        except Exception:  # the app failed outside its own error handling
            log.exception("unhandled error in the WSGI app")
            return self._refuse(scope, protocol, BodyRefused(
                500, "Internal error", "internal", "The server failed to answer; the error has been logged."))
        if answer.rest is None:
            protocol.response_bytes(answer.status, answer.headers, answer.data)
            return None
        transport = protocol.response_stream(answer.status, answer.headers)
        done = False
        try:
            await transport.send_bytes(answer.data)
            while not done:
                data, done = await loop.run_in_executor(self.pool, _pull, answer.rest)
                if data:
                    await transport.send_bytes(data)
        except Exception:  # the client went away mid-stream
            pass
        finally:
            if answer.close is not None:
                await loop.run_in_executor(self.pool, answer.close)
        return None

    def _refuse(self, scope: Any, protocol: Any, refused: BodyRefused) -> None:
        count_request(scope.method, UNMATCHED, refused.status, None)
        protocol.response_bytes(*refused.answer())

    def _run(self, environ: dict[str, Any]) -> _Answer:
        """Call the WSGI app and take its answer up to the first piece of the body (in a pool thread)."""
        answer = _Answer()

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None):
            answer.status = int(status[:3])
            answer.headers = headers
            return _no_write

        result: Iterable[bytes] = self.wsgi_app(environ, start_response)
        if isinstance(result, list) and len(result) <= 1:
            answer.data = result[0] if result else b""
            return answer
        chunks = iter(result)
        close = getattr(result, "close", None)
        try:
            answer.data, done = _pull(chunks)
        except BaseException:
            if close is not None:
                close()
            raise
        if done:
            if close is not None:
                close()
        else:
            answer.rest, answer.close = chunks, close
        return answer


def _no_write(data: bytes) -> None:
    raise NotImplementedError("write() is not supported; return the body instead")


def load() -> BufferedWSGI:
    """The RSGI target of `consent-api serve` (granian factory): the WSGI app named in
    CONSENT_SERVE_WSGI, with the body limits of the CONSENT_* settings."""
    from consent_api.config import Settings

    spec = json.loads(os.environ[SERVE_ENV])
    module, _, attribute = spec["target"].partition(":")
    settings = Settings.from_env()
    app = getattr(import_module(module), attribute)
    extensions = getattr(app, "extensions", {})
    return BufferedWSGI(app, threads=spec["threads"], max_body_bytes=settings.max_body_bytes,
                        body_timeout_s=settings.body_timeout_s, inline=extensions.get(INLINE),
                        on_loop=extensions.get(ON_LOOP))
