"""Request bodies on the wire against a real `consent-api serve`: a chunked body over the size
limit is refused whole (413, nothing written), and a body the app never reads (an early 401,
403 or 429) leaves a kept-alive connection fit for the next request."""

from __future__ import annotations

import json

from tests import builders
from tests.support import servers
from tests.support.servers import read_response

MAX_BODY = 4096


def chunked(body: bytes, size: int = 1000) -> bytes:
    pieces = [body[i:i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


def read_until_closed_or_answered(conn) -> bytes:
    try:
        return read_response(conn)
    except AssertionError as exc:  # closed before a whole answer
        return str(exc).encode()


def test_a_chunked_body_over_the_limit_is_refused_and_nothing_is_written(tmp_path):
    with servers.serving(tmp_path, workers=1, env={"CONSENT_MAX_BODY_BYTES": str(MAX_BODY)}) as server:
        tenant = server.api().new_tenant("Chunks")
        valid = json.dumps(builders.consents(builders.decision("push"))).encode()
        # a valid JSON document within the limit, then enough padding and junk to pass it
        body = valid + b" " * (MAX_BODY - len(valid)) + b"junk" * 100
        head = (f"POST /v1/subjects/chunky/consents HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {tenant.admin}\r\nContent-Type: application/json\r\n"
                "Transfer-Encoding: chunked\r\n\r\n").encode()
        with server.connect() as conn:
            conn.sendall(head + chunked(body))
            answer = read_until_closed_or_answered(conn)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
        assert b"application/problem+json" in answer
        tenant.get("/v1/subjects/chunky/consents", expect=404)

        # the same document within the limit, chunked, is recorded
        with server.connect() as conn:
            conn.sendall(head + chunked(valid, 7))
            answer = read_response(conn)
        assert answer.startswith(b"HTTP/1.1 201"), answer[:300]


def test_an_unread_body_never_spoils_the_kept_alive_connection(tmp_path):
    with servers.serving(tmp_path, workers=1) as server:
        body = b'{"name": "' + b"x" * 300_000 + b'"}'
        with server.connect() as conn:
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
