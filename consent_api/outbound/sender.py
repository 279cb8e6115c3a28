"""One webhook POST: to an address vetted by addresses.py, TLS verified against the host name
(SNI), at most TIMEOUT_S from the first connection attempt to the answer's status line and
the few bytes read of its body, redirects not followed (a 3xx is a failure like any non-2xx),
no proxy from the environment.

A watchdog closes the socket at the deadline, so a receiver that trickles its answer one byte
at a time cannot hold a delivery thread past it.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
import time
from dataclasses import dataclass

from consent_api.domain.webhooks import RESPONSE_READ_BYTES, TIMEOUT_S
from consent_api.outbound.addresses import Refused, Resolve, parse, system_resolve, vetted

USER_AGENT = "consent_api-webhooks/1"


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


def post(url: str, headers: dict[str, str], body: bytes, *, allow_private: bool,
         timeout_s: float = TIMEOUT_S, resolve: Resolve = system_resolve,
         tls: ssl.SSLContext | None = None) -> Answer:
    started = time.monotonic()
    deadline = started + timeout_s

    def took() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        target = parse(url, allow_private)
        addresses = vetted(target, allow_private, resolve)
    except Refused as exc:
        return Answer(None, took(), f"refused: {exc}")
    sock = None
    try:
        sock = _connect(addresses, target.port, deadline)
        if target.scheme == "https":
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            sock = (tls or ssl.create_default_context()).wrap_socket(sock, server_hostname=target.host)
        status = _exchange(sock, target.host, target.port, target.scheme, target.path, headers, body, deadline)
        return Answer(status, took())
    except (OSError, http.client.HTTPException, _Timeout, ValueError) as exc:
        return Answer(None, took(), f"{type(exc).__name__}: {exc}"[:300])
    finally:
        if sock is not None:
            sock.close()


def _connect(addresses: list[str], port: int, deadline: float) -> socket.socket:
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
            return sock
        except OSError as exc:
            sock.close()
            error = exc
    raise error or _Timeout("no time left to connect")


def _exchange(sock: socket.socket, host: str, port: int, scheme: str, path: str, headers: dict[str, str],
              body: bytes, deadline: float) -> int:
    """Send the request on sock and read the status and at most RESPONSE_READ_BYTES of the body."""
    default = 443 if scheme == "https" else 80
    conn = http.client.HTTPConnection(host, port if port != default else None)
    conn.sock = sock  # connected (and vetted) already: http.client must not connect on its own
    watchdog = threading.Timer(max(0.0, deadline - time.monotonic()), _cut, (sock,))
    watchdog.daemon = True
    watchdog.start()
    try:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        conn.request("POST", path, body=body, headers={"User-Agent": USER_AGENT, **headers,
                                                       "Content-Length": str(len(body))})
        response = conn.getresponse()
        response.read(RESPONSE_READ_BYTES)  # and no more: the rest is left unread
        if time.monotonic() > deadline:
            raise _Timeout("no complete answer within the timeout")
        return response.status
    finally:
        watchdog.cancel()
        conn.sock = None


def _cut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed: nothing to cut
        sock.shutdown(socket.SHUT_RDWR)
