"""Structured logs: one JSON object per line, and one line per request.

The request line carries what an operator needs and nothing a log reader should not hold:
the route template (never the path, which names a subject), the tenant and the kind of
credential (never a key, a token or an Authorization header), and the client's network
prefix (IPv4 /24, IPv6 /48; never the full address). A request id from ``X-Request-ID`` is
kept when it looks like one, otherwise one is made; it is echoed in the response and put on
every line logged while the request runs.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import sys
import threading
import time
from collections import deque
from datetime import datetime, timezone
from typing import Any

import orjson
from flask import Flask, g, has_request_context, request

from consent_api.domain.evidence import ip_prefix
from consent_api.web.metrics import route

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
ACCESS = logging.getLogger("consent_api.access")
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def offered_or_new_id(offered: str) -> str:
    """The X-Request-ID a client sent when it looks like one, else a new id."""
    return offered if REQUEST_ID.match(offered) else secrets.token_hex(16)


def request_id() -> str:
    """This request's id (from X-Request-ID when valid, else a new one)."""
    rid = g.get("request_id")
    if rid is None:
        rid = g.request_id = offered_or_new_id(request.headers.get(REQUEST_ID_HEADER, ""))
    return rid


class JsonFormatter(logging.Formatter):
    """A record as one JSON line: ts, level, logger, msg, request_id, the record's extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds")
                  .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if has_request_context():
            doc["request_id"] = request_id()
        doc.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        try:  # orjson writes the same compact UTF-8 line ~10x faster; this runs once per request
            return orjson.dumps(doc, default=str).decode("utf-8")
        except TypeError:  # e.g. an int beyond 64 bits in an extra field
            return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), default=str)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (pytest's capture swaps it)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


class BackgroundStderr(logging.Handler):
    """For the production server (web/wsgi.py): a record is formatted in its own thread and the
    line queued; one thread writes what queued, several lines per write, every WRITE_EVERY_S.
    With 8 threads per worker, StreamHandler's lock around each write and flush held the others
    back: a fifth of a consent check's time under load went to waiting for it."""

    WRITE_EVERY_S = 0.01

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self._lines: deque[str] = deque()
        self._stop = threading.Event()
        self._writer = threading.Thread(target=self._run, name="log-writer", daemon=True)
        self._writer.start()

    def handle(self, record: logging.LogRecord) -> bool:
        # No handler lock: formatting needs none, and deque.append is atomic.
        if self.filter(record):
            try:
                self._lines.append(self.format(record))
            except Exception:
                self.handleError(record)
        return True

    def append_line(self, line: str) -> None:
        """A line formatted by its caller (access_line's direct path)."""
        self._lines.append(line)

    def emit(self, record: logging.LogRecord) -> None:  # pragma: no cover - handle() does it all
        self.handle(record)

    def _run(self) -> None:
        while not self._stop.wait(self.WRITE_EVERY_S):
            self.flush()
        self.flush()

    def flush(self) -> None:
        lines = []
        while self._lines:
            lines.append(self._lines.popleft())
        if lines:
            sys.stderr.write("\n".join(lines) + "\n")
            sys.stderr.flush()

    def close(self) -> None:
        self._stop.set()
        self._writer.join(timeout=5)
        super().close()


def write_in_background() -> BackgroundStderr:
    """Swap the consent_api loggers' stderr handler for a BackgroundStderr; close() it last."""
    logger = logging.getLogger("consent_api")
    for handler in [h for h in logger.handlers if isinstance(h, _StderrHandler | BackgroundStderr)]:
        logger.removeHandler(handler)
    background = BackgroundStderr()
    logger.addHandler(background)
    return background


def install(level: str) -> None:
    """Send the consent_api loggers to stderr as JSON lines (once per process)."""
    logger = logging.getLogger("consent_api")
    logger.setLevel(level)
    if not any(isinstance(h, _StderrHandler | BackgroundStderr) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(JsonFormatter())
        # Records still propagate (pytest's caplog sees them); granian configures no root
        # handler, so under `consent-api serve` each record is written once, by this handler.
        logger.addHandler(handler)


def init_app(app: Flask) -> None:
    @app.before_request
    def _begin() -> None:
        g.log_started = time.perf_counter()
        request_id()

    @app.after_request
    def _log_request(response):
        response.headers[REQUEST_ID_HEADER] = rid = request_id()
        started = g.get("log_started")
        access_line(request.method, route(), response.status_code,
                    time.perf_counter() - started if started else None, g.get("principal"),
                    request.remote_addr, rid)
        return response


def _direct_handler() -> BackgroundStderr | None:
    """The BackgroundStderr, when it alone would see an access record: no filter, no other
    handler anywhere on the way up (pytest's caplog adds one to the root, for example)."""
    parent = ACCESS.parent
    if ACCESS.handlers or ACCESS.filters or parent is None or parent.filters or len(parent.handlers) != 1:
        return None
    handler = parent.handlers[0]
    if type(handler) is not BackgroundStderr or handler.filters:
        return None
    if parent.propagate and parent.parent is not None and parent.parent.handlers:
        return None
    return handler


def access_line(method: str, rule: str, status: int, seconds: float | None, principal: Any,
                remote_addr: str | None, rid: str) -> None:
    """The one access-log line of a request (web/fastreads.py writes it too)."""
    if not ACCESS.isEnabledFor(logging.INFO):
        return
    fields = {
        "request_id": rid,
        "method": method,
        "route": rule,
        "status": status,
        "duration_ms": round(seconds * 1000, 2) if seconds is not None else None,
        "tenant_id": getattr(principal, "tenant_id", None),
        "credential": getattr(principal, "kind", None),
        "client": ip_prefix(remote_addr),
    }
    direct = _direct_handler()
    if direct is not None:  # the production server: JsonFormatter's line without a LogRecord (~25 us)
        ts = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        direct.append_line(orjson.dumps({"ts": ts, "level": "info", "logger": ACCESS.name, "msg": "request",
                                         **fields}).decode("utf-8"))
        return
    # A record made and handled directly: Logger.info would also walk the stack for the
    # caller's file and line (findCaller), which the JSON line never shows.
    ACCESS.handle(ACCESS.makeRecord(ACCESS.name, logging.INFO, __file__, 0, "request", (), None, extra=fields))
