"""`consent-api serve` as operations sees it: metrics summed over its worker processes, JSON
request logs, a graceful SIGTERM, and a start while MongoDB is unreachable."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.support import servers
from tests.support.api import OPERATOR_TOKEN

BATCH = 16


def healthz_total(text: str) -> float:
    line = 'consent_api_http_requests_total{method="GET",route="/healthz",status="200"} '
    return next((float(row[len(line):]) for row in text.splitlines() if row.startswith(line)), 0.0)


def workers_counting(metrics_dir: Path) -> set[str]:
    return {p.name for p in metrics_dir.glob("counter_*.db")}


def test_metrics_add_up_every_worker_and_each_request_is_one_json_line(tmp_path):
    metrics_dir = tmp_path / "metrics"
    server = servers.serve(tmp_path, workers=2, env={"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)})
    api = server.api()
    try:
        sent = 0
        deadline = time.monotonic() + 60  # a bound for a loaded machine, where one worker may run late
        with ThreadPoolExecutor(8) as pool:
            # Concurrent connections land on both (started) workers; go on until both have counted some.
            while len(workers_counting(metrics_dir)) < 2 and time.monotonic() < deadline:
                statuses = list(pool.map(lambda _: api.get("/healthz").status_code, range(BATCH)))
                assert statuses == [200] * BATCH
                sent += BATCH
        assert len(workers_counting(metrics_dir)) == 2, "the requests never reached the second worker"

        # whichever worker answers the scrape reports every worker's requests
        assert [healthz_total(servers.scrape(server)) for _ in range(4)] == [float(sent)] * 4
    finally:
        server.stop()

    lines = [json.loads(row) for row in server.log.read_text().splitlines() if row.startswith("{")]
    requests = [line for line in lines if line.get("route") == "/healthz"]
    assert len(requests) == sent and len({line["request_id"] for line in requests}) == sent
    assert sum(1 for line in lines if line["msg"].startswith("worker stopping")) == 2


def test_sigterm_lets_a_request_in_flight_finish(tmp_path):
    # granian 2.8 now and then misses a worker's SIGTERM that lands while the worker runs Python;
    # it then kills the worker after --shutdown-timeout (README, "Graceful shutdown"), so that
    # case costs this test 5 s rather than failing it: the request has been answered by then.
    server = servers.serve(tmp_path, workers=1, env={"CONSENT_SHUTDOWN_TIMEOUT": "5"})
    body = json.dumps({"name": "Acme"}).encode()
    # Expect: 100-continue makes the server say when it has parsed the head and waits for the
    # body, so the SIGTERM below lands on a request in flight, never on an idle connection.
    head = (f"POST /v1/tenants HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {OPERATOR_TOKEN}\r\n"
            f"Expect: 100-continue\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as conn:
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert servers.read_response(conn).startswith(b"HTTP/1.1 200")  # a worker holds this connection
            conn.sendall(head)  # a request begins ...
            assert conn.recv(64) == b"HTTP/1.1 100 Continue\r\n\r\n"
            conn.sendall(body[:5])

            server.process.send_signal(signal.SIGTERM)  # ... the orchestrator stops the container ...
            conn.sendall(body[5:])  # ... and the request still completes
            answer = servers.read_response(conn)
        assert answer.startswith(b"HTTP/1.1 201"), answer[:200]
        assert server.process.wait(timeout=30) == 0
    finally:
        server.stop()
    assert '"route":"/v1/tenants","status":201' in server.log.read_text()


def test_serve_starts_while_mongodb_is_unreachable_and_is_not_ready(tmp_path):
    server = servers.serve(
        tmp_path, workers=1, database_url=f"mongodb://127.0.0.1:{servers.free_port()}/consent_api",
        env={"CONSENT_MONGO_SERVER_SELECTION_TIMEOUT_MS": "100"}, ready_path="/healthz")
    api = server.api()
    try:
        ready = api.get("/readyz")
        assert ready.status_code == 503 and ready.json["type"].endswith("/unavailable")
        assert api.post("/v1/tenants", {"name": "x"}, token=OPERATOR_TOKEN).status_code == 503
    finally:
        server.stop()
    assert "the store does not answer" in server.log.read_text()


def test_a_second_server_on_a_port_in_use_refuses_to_start(tmp_path):
    """granian binds with SO_REUSEPORT: without the check a second serve would share the port
    (and its requests) with the first, whatever store each one has."""
    first = servers.serve(tmp_path, workers=1)
    port = str(first.port)
    try:
        second = subprocess.run(
            [sys.executable, "-m", "consent_api.cli", "serve", "--host", "127.0.0.1", "--port", port],
            env={**os.environ, "CONSENT_DATABASE_URL": f"sqlite:///{tmp_path}/other.db", "PYTHONPATH": str(servers.REPO)},
            capture_output=True, text=True, timeout=60, cwd=tmp_path)
        assert second.returncode == 2
        assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in second.stderr
        assert not (tmp_path / "other.db").exists()  # refused before touching any store
        assert first.api().get("/readyz").status_code == 200
    finally:
        first.stop()
