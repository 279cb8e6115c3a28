"""A real webhook receiver on 127.0.0.1 for the tests and bench/: an HTTP server in a thread
that keeps every request it gets and answers as told (``answers``: statuses to give in turn,
then ``status``), or not at all while ``down``. With ``keep_alive`` it speaks HTTP/1.1 and keeps
connections open between requests (``peer`` tells them apart); ``hang_up`` then closes a
connection after its answer without saying so, as a receiver whose idle timeout passed does."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    arrived: float  # time.monotonic() at arrival
    peer: tuple[str, int] = ("", 0)  # the sender's address and port: one per connection

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]


@dataclass
class Receiver:
    url: str
    status: int = 204
    answers: list[int] = field(default_factory=list)  # given first, one per request
    rule: Callable[[Received], int | None] | None = None  # before answers: a status for this request, or None
    requests: list[Received] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)
    hang_up: bool = False  # close each connection after its answer, without a Connection: close

    def wait_for(self, count: int, timeout_s: float = 30, what: Callable[[Received], bool] = lambda r: True
                 ) -> list[Received]:
        """The requests so far once ``count`` of them match ``what``; AssertionError after timeout_s."""
        deadline = time.monotonic() + timeout_s
        with self.changed:
            while len([r for r in self.requests if what(r)]) < count:
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"{len(self.requests)} requests arrived, waited for {count}"
                self.changed.wait(remaining)
            return list(self.requests)

    @property
    def events(self) -> list[dict]:
        return [r.json for r in self.requests]


@contextlib.contextmanager
def receiving(status: int = 204, answers: list[int] | None = None, path: str = "/hooks",
              keep_alive: bool = False) -> Iterator[Receiver]:
    """A receiver at http://127.0.0.1:PORT/hooks until the block ends."""
    receiver: Receiver | None = None

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"

        def do_POST(self) -> None:
            assert receiver is not None
            data = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with receiver.changed:
                got = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, data, time.monotonic(),
                               self.client_address[:2])
                receiver.requests.append(got)
                code = receiver.rule(got) if receiver.rule else None
                if code is None:
                    code = receiver.answers.pop(0) if receiver.answers else receiver.status
                hang_up = receiver.hang_up  # as it was when the request came, not when it was answered
                receiver.changed.notify_all()
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()
            if hang_up:
                self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver = Receiver(f"http://127.0.0.1:{server.server_address[1]}{path}", status, list(answers or []))
    thread = threading.Thread(target=server.serve_forever, name="webhook-receiver", daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
