"""Webhook POSTs: to an address vetted by addresses.py, TLS verified against the host name
(SNI), at most TIMEOUT_S from the first connection attempt to the answer's status line and
the few bytes read of its body, redirects not followed (a 3xx is a failure like any non-2xx),
no proxy from the environment.

``Sender`` keeps connections alive per receiver (scheme, host, port): a delivery goes over an
idle connection of that receiver when one is open to an address the delivery's own check has
just vetted (the host is resolved and vetted at every delivery, kept-alive or not), else over a
new one. A connection is kept only after an answer read whole within RESPONSE_READ_BYTES
(declared length, no ``Connection: close``), for at most IDLE_S. A kept connection the receiver
closed meanwhile fails before any answer; the delivery is then made once more on a new
connection (receivers deduplicate on webhook-id, as at-least-once asks anyway).

One watchdog thread closes a socket at its deadline, so a receiver that trickles its answer one
byte at a time cannot hold a delivery thread past it.
"""

from __future__ import annotations

import contextlib
import heapq
import http.client
import itertools
import socket
import ssl
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

from consent_api.domain.webhooks import RESPONSE_READ_BYTES, TIMEOUT_S
from consent_api.outbound.addresses import Refused, Resolve, Target, parse, system_resolve, vetted

USER_AGENT = "consent_api-webhooks/1"
IDLE_S = 4.0  # a kept connection is used again within this; most servers keep theirs 5 s or more
KEPT_PER_RECEIVER = 8  # idle connections kept per receiver (deliveries in flight per endpoint are fewer)


@dataclass(frozen=True)
class Answer:
    """What a receiver answered: status None when none came (refused, timed out, cut off)."""

    status: int | None
    latency_ms: int
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class _Timeout(Exception):
    pass


class _Watchdog:
    """One thread for every deadline: ``watch(sock, at)`` shuts the socket down at ``at`` unless
    the returned ticket is cancelled first."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, socket.socket]] = []
        self._live: set[int] = set()
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, sock: socket.socket, at: float) -> int:
        with self._cond:
            ticket = next(self._ids)
            heapq.heappush(self._heap, (at, ticket, sock))
            self._live.add(ticket)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="webhook-watchdog", daemon=True)
                self._thread.start()
            self._cond.notify()
            return ticket

    def cancel(self, ticket: int) -> None:
        with self._cond:
            self._live.discard(ticket)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap or (self._heap[0][1] in self._live and self._heap[0][0] > time.monotonic()):
                    self._cond.wait(self._heap[0][0] - time.monotonic() if self._heap else None)
                _, ticket, sock = heapq.heappop(self._heap)
                due = ticket in self._live
                self._live.discard(ticket)
            if due:
                _cut(sock)


_WATCHDOG = _Watchdog()


@dataclass
class _Kept:
    conn: http.client.HTTPConnection
    address: str
    idle_since: float


@dataclass
class Sender:
    """POSTs webhooks, keeping connections alive per receiver; safe to use from many threads."""

    allow_private: bool
    resolve: Resolve = system_resolve
    tls: ssl.SSLContext | None = None
    timeout_s: float = TIMEOUT_S
    _idle: dict[tuple[str, str, int], list[_Kept]] = field(default_factory=lambda: defaultdict(list))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def post(self, url: str, headers: dict[str, str], body: bytes) -> Answer:
        started = time.monotonic()
        deadline = started + self.timeout_s

        def took() -> int:
            return int((time.monotonic() - started) * 1000)

        try:
            target = parse(url, self.allow_private)
            addresses = vetted(target, self.allow_private, self.resolve)
        except Refused as exc:
            return Answer(None, took(), f"refused: {exc}")
        kept = self._take(target, addresses)
        if kept is not None:
            try:
                status, keep = _exchange(kept.conn, target, headers, body, deadline)
            except _StaleConnection:
                kept.conn.close()  # the receiver had closed it: once more, on a new connection
            except (OSError, http.client.HTTPException, _Timeout, ValueError) as exc:
                kept.conn.close()
                return Answer(None, took(), f"{type(exc).__name__}: {exc}"[:300])
            else:
                self._give_back(target, kept, keep)
                return Answer(status, took())
        conn = None
        try:
            conn, address = self._open(target, addresses, deadline)
            status, keep = _exchange(conn, target, headers, body, deadline)
        except (OSError, http.client.HTTPException, _Timeout, ValueError) as exc:
            if conn is not None:
                conn.close()
            return Answer(None, took(), f"{type(exc).__name__}: {exc}"[:300])
        self._give_back(target, _Kept(conn, address, 0.0), keep)
        return Answer(status, took())

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, defaultdict(list)
        for kept in itertools.chain.from_iterable(idle.values()):
            kept.conn.close()

    def _take(self, target: Target, addresses: list[str]) -> _Kept | None:
        """An idle connection of this receiver to a vetted address, used within IDLE_S."""
        now = time.monotonic()
        stale = []
        found = None
        with self._lock:
            pool = self._idle[(target.scheme, target.host, target.port)]
            while pool:
                kept = pool.pop()
                if now - kept.idle_since > IDLE_S or kept.address not in addresses:
                    stale.append(kept)
                    continue
                found = kept
                break
        for kept in stale:
            kept.conn.close()
        return found

    def _give_back(self, target: Target, kept: _Kept, keep: bool) -> None:
        if not keep:
            kept.conn.close()
            return
        kept.idle_since = time.monotonic()
        with self._lock:
            pool = self._idle[(target.scheme, target.host, target.port)]
            if len(pool) < KEPT_PER_RECEIVER:
                pool.append(kept)
                return
        kept.conn.close()

    def _open(self, target: Target, addresses: list[str], deadline: float) -> tuple[http.client.HTTPConnection, str]:
        sock, address = _connect(addresses, target.port, deadline)
        try:
            if target.scheme == "https":
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                ticket = _WATCHDOG.watch(sock, deadline)
                try:
                    sock = (self.tls or ssl.create_default_context()).wrap_socket(sock, server_hostname=target.host)
                finally:
                    _WATCHDOG.cancel(ticket)
        except BaseException:
            sock.close()
            raise
        default = 443 if target.scheme == "https" else 80
        conn = http.client.HTTPConnection(target.host, target.port if target.port != default else None)
        conn.sock = sock  # connected (and vetted) already: http.client must not connect on its own
        conn.auto_open = 0  # and never reconnects by itself either
        return conn, address


def post(url: str, headers: dict[str, str], body: bytes, *, allow_private: bool,
         timeout_s: float = TIMEOUT_S, resolve: Resolve = system_resolve,
         tls: ssl.SSLContext | None = None) -> Answer:
    """One POST on a connection of its own, closed after it."""
    sender = Sender(allow_private, resolve, tls, timeout_s)
    try:
        return sender.post(url, headers, body)
    finally:
        sender.close()


def _connect(addresses: list[str], port: int, deadline: float) -> tuple[socket.socket, str]:
    error: OSError | None = None
    for address in addresses:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(remaining)
        try:
            sock.connect((address, port))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock, address
        except OSError as exc:
            sock.close()
            error = exc
    raise error or _Timeout("no time left to connect")


class _StaleConnection(Exception):
    """A kept connection failed before any byte of an answer: the receiver had closed it."""


def _exchange(conn: http.client.HTTPConnection, target: Target, headers: dict[str, str], body: bytes,
              deadline: float) -> tuple[int, bool]:
    """Send the request on conn; the status, and whether the connection may carry another (the
    answer was read whole within RESPONSE_READ_BYTES and the receiver keeps it open)."""
    sock = conn.sock
    assert sock is not None
    reused = getattr(conn, "_consent_used", False)
    ticket = _WATCHDOG.watch(sock, deadline)
    try:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            conn.request("POST", target.path, body=body, headers={"User-Agent": USER_AGENT, **headers,
                                                                  "Content-Length": str(len(body))})
            response = conn.getresponse()
        except (ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine) as exc:
            if reused and time.monotonic() < deadline:
                raise _StaleConnection() from exc
            raise
        length = response.length
        response.read(RESPONSE_READ_BYTES)  # and no more: the rest is left unread
        if time.monotonic() > deadline:
            raise _Timeout("no complete answer within the timeout")
        conn._consent_used = True  # type: ignore[attr-defined]
        keep = (not response.will_close and length is not None and length <= RESPONSE_READ_BYTES
                and response.isclosed())
        return response.status, keep
    finally:
        _WATCHDOG.cancel(ticket)


def _cut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed: nothing to cut
        sock.shutdown(socket.SHUT_RDWR)
