"""Slow request bodies against a real `consent-api serve`: clients that trickle a body one byte
a second get 408 once the body deadline passes, and meanwhile every other client, health
checks included, keeps getting its answers."""

from __future__ import annotations

import http.client
import select
import threading
import time

from tests.support import servers

SLOW_CLIENTS = 40
HOLD_S = 10  # the slow clients trickle for at most this long
DEADLINE_S = 4  # CONSENT_BODY_TIMEOUT_S of the server under test
ORIGIN = "https://shop.example"


def trickle(server: servers.Server, key: str, stop: threading.Event) -> list[bytes]:
    """Open SLOW_CLIENTS connections that each announce a 200-byte body and send one byte of it
    per second; return what each connection got back (b"" when nothing came). Each round reads
    what the server answered before sending more, and the bytes go out half a second off the
    deadline, so an answer is never lost to a reset caused by a byte the server left unread."""
    conns = []
    for _ in range(SLOW_CLIENTS):
        conn = server.connect(timeout_s=HOLD_S + 10)
        conn.sendall((f"POST /v1/public/consents HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      f"Authorization: Bearer {key}\r\nOrigin: {ORIGIN}\r\n"
                      "Content-Type: application/json\r\nContent-Length: 200\r\n\r\n").encode())
        conns.append(conn)
    answered: list[bytes] = [b""] * len(conns)
    started = time.monotonic()
    stop.wait(0.5)
    while time.monotonic() - started < HOLD_S and not stop.is_set():
        waiting = [conn for i, conn in enumerate(conns) if not answered[i]]
        readable, _, _ = select.select(waiting, [], [], 0)
        for conn in readable:
            answered[conns.index(conn)] = conn.recv(4096) or b"closed without an answer"
        for i, conn in enumerate(conns):
            if not answered[i]:
                try:
                    conn.sendall(b" ")
                except OSError as exc:
                    answered[i] = f"send failed: {exc!r}".encode()
        stop.wait(1)
    for conn in conns:
        conn.close()
    return answered


def test_slow_bodies_time_out_and_never_starve_other_clients(tmp_path):
    with servers.serving(tmp_path, workers=2, env={"CONSENT_BODY_TIMEOUT_S": str(DEADLINE_S)}) as server:
        tenant = server.api().new_tenant("Slow", purposes=None)
        publishable = tenant.issue_key(type="publishable", origins=[ORIGIN], name="web")
        stop = threading.Event()
        slow: list[list[bytes]] = []
        holder = threading.Thread(target=lambda: slow.append(trickle(server, publishable, stop)))
        holder.start()
        time.sleep(1)  # every slow connection is open and has begun its body

        latencies, failures = [], []
        client = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        while holder.is_alive() and len(latencies) + len(failures) < 5000:
            for path in ("/healthz", "/readyz", "/v1/purposes"):
                started = time.monotonic()
                try:
                    client.request("GET", path, headers={"Authorization": f"Bearer {tenant.admin}"})
                    response = client.getresponse()
                    response.read()
                    assert response.status == 200, (path, response.status)
                    latencies.append(time.monotonic() - started)
                except OSError as exc:  # a timeout or a reset: this client was starved
                    failures.append(f"{path}: {exc!r}")
                    client.close()
                    client = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
            time.sleep(0.02)
        stop.set()
        holder.join(timeout=30)
        client.close()

    assert failures == [], f"{len(failures)} requests of other clients failed: {failures[:3]}"
    assert len(latencies) > 100
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    print(f"\nother clients during the hold: {len(latencies)} answers, "
          f"p50 {latencies[len(latencies) // 2] * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms")
    # every slow connection was answered 408 by the deadline, not served
    assert all(answer.startswith(b"HTTP/1.1 408") for answer in slow[0]), \
        {answer[:40] for answer in slow[0]}
