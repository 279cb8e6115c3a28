"""Request bodies on the wire against a real `consent-api serve`: a chunked body over the size
limit is refused whole (413, nothing written), and a body the app never reads (an early 401,
403 or 429) leaves a kept-alive connection fit for the next request."""

from __future__ import annotations

import json
import socket

from tests.live.conftest import OPERATOR, start_server
from tests.live.test_operations import read_response

MAX_BODY = 4096


def port_of(server) -> int:
    return int(server.url.rsplit(":", 1)[1])


def chunked(body: bytes, size: int = 1000) -> bytes:
    pieces = [body[i:i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


def read_until_closed_or_answered(conn: socket.socket) -> bytes:
    try:
        return read_response(conn)
    except AssertionError as exc:  # closed before a whole answer
        return str(exc).encode()


def test_a_chunked_body_over_the_limit_is_refused_and_nothing_is_written(tmp_path):
    server = start_server(tmp_path, workers=1, env={"CONSENT_MAX_BODY_BYTES": str(MAX_BODY)})
    try:
        _, tenant = server.call("POST", "/v1/tenants", {"name": "Chunks"}, OPERATOR)
        admin = tenant["admin_key"]
        assert server.call("PUT", "/v1/purposes/push", {"kind": "marketing", "title": {"en": "Push"}},
                           admin)[0] == 201
        assert server.call("POST", "/v1/policies", {"version": "v1", "effective_at": "2020-01-01T00:00:00Z",
                                                    "url": "https://x.example/p", "material": True}, admin)[0] == 201
        valid = json.dumps({"decisions": [{"purpose": "push", "granted": True}], "policy_version": "v1",
                            "source": {"channel": "server"}}).encode()
        # a valid JSON document within the limit, then enough padding and junk to pass it
        body = valid + b" " * (MAX_BODY - len(valid)) + b"junk" * 100
        head = (f"POST /v1/subjects/chunky/consents HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {admin}\r\nContent-Type: application/json\r\n"
                "Transfer-Encoding: chunked\r\n\r\n").encode()
        with socket.create_connection(("127.0.0.1", port_of(server)), timeout=10) as conn:
            conn.sendall(head + chunked(body))
            answer = read_until_closed_or_answered(conn)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
        assert b"application/problem+json" in answer
        assert server.call("GET", "/v1/subjects/chunky/consents", token=admin)[0] == 404

        # the same document within the limit, chunked, is recorded
        with socket.create_connection(("127.0.0.1", port_of(server)), timeout=10) as conn:
            conn.sendall(head + chunked(valid, 7))
            answer = read_response(conn)
        assert answer.startswith(b"HTTP/1.1 201"), answer[:300]
    finally:
        server.stop()


def test_an_unread_body_never_spoils_the_kept_alive_connection(tmp_path):
    server = start_server(tmp_path, workers=1)
    try:
        body = b'{"name": "' + b"x" * 300_000 + b'"}'
        with socket.create_connection(("127.0.0.1", port_of(server)), timeout=10) as conn:
            for n, (auth, expected) in enumerate([("", b"401"), ("Bearer sk_wrong", b"401")] * 3):
                conn.sendall(("POST /v1/tenants HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                              + (f"Authorization: {auth}\r\n" if auth else "")
                              + f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
                             + body)
                answer = read_response(conn)
                assert answer.startswith(b"HTTP/1.1 " + expected), (n, answer[:200])
                conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                answer = read_response(conn)
                assert answer.startswith(b"HTTP/1.1 200"), (n, answer[:200])
    finally:
        server.stop()
