"""Unauthenticated requests with made-up methods against a real `consent-api serve` leave
/metrics as it was: no label set per method name, in any worker (multiprocess files included)."""

from __future__ import annotations

from tests.support.servers import scrape

REQUESTS = 3000
CONNECTIONS = 4


def series(text: str) -> set[str]:
    return {line.rsplit(" ", 1)[0] for line in text.splitlines()
            if line.startswith("consent_api_http_requests_total{")}


def send_odd_methods(server, start: int, count: int) -> int:
    """Pipeline `count` requests with distinct methods on one kept-alive connection; the number
    of answers read back."""
    with server.connect(timeout_s=20) as conn:
        answers, data = 0, b""
        for batch in range(start, start + count, 100):
            conn.sendall(b"".join(f"X{n}Y /v1/subjects/s{n}/consents HTTP/1.1\r\nHost: h\r\n\r\n".encode()
                                  for n in range(batch, min(batch + 100, start + count))))
            while data.count(b"HTTP/1.1 ") < min(100, start + count - batch):
                chunk = conn.recv(65536)
                if not chunk:
                    return answers + data.count(b"HTTP/1.1 ")
                data += chunk
            answers += data.count(b"HTTP/1.1 ")
            data = b""
        return answers


def test_made_up_methods_add_no_label_sets(live_server):
    send_odd_methods(live_server, 0, 200)  # both workers have counted the OTHER label sets once
    send_odd_methods(live_server, 200, 200)
    scrape(live_server)  # a scrape's own store reads (the webhook metrics) have their label sets now
    before = scrape(live_server)
    for c in range(CONNECTIONS):
        sent = REQUESTS // CONNECTIONS
        assert send_odd_methods(live_server, 1000 + c * REQUESTS, sent) == sent
    after = scrape(live_server)
    assert series(after) - series(before) <= {s for s in series(after) if 'route="/metrics"' in s}
    assert len(after) < len(before) + 2000
    assert all('method="X' not in line for line in after.splitlines())
