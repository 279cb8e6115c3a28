"""kill -9 under write load: every write the server acknowledged (201) is there after a
restart on the same file, every chain verifies, and the stored states rebuild unchanged."""

from __future__ import annotations

import http.client
import random
import subprocess
import sys
import threading
import time
import urllib.parse

from consent_api.domain.ledger import verify_chain
from tests.live.conftest import OPERATOR, ROOT, start_server

WRITERS = 8
SUBJECTS = [f"crash-{n}" for n in range(24)]  # few enough that writers share chains
PURPOSES = ("push", "location", "marketing_sms")


def history(server, key: str, subject_id: str) -> list[dict]:
    events, cursor = [], None
    while True:
        query = "?limit=500" + (f"&cursor={urllib.parse.quote(cursor)}" if cursor else "")
        status, page = server.call("GET", f"/v1/subjects/{subject_id}/history{query}", token=key)
        assert status == 200, page
        events += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return events


def test_acknowledged_writes_survive_kill_9(tmp_path):
    server = start_server(tmp_path)
    try:
        status, tenant = server.call("POST", "/v1/tenants", {"name": "Crash"}, OPERATOR)
        key = tenant["admin_key"]
        for purpose in PURPOSES:
            assert server.call("PUT", f"/v1/purposes/{purpose}",
                               {"kind": "processing", "title": {"en": purpose}}, key)[0] == 201
        assert server.call("POST", "/v1/policies",
                           {"version": "v1", "effective_at": "2026-01-01T00:00:00Z"}, key)[0] == 201

        acknowledged: dict[str, set[str]] = {s: set() for s in SUBJECTS}
        lock = threading.Lock()
        down = threading.Event()

        def writer(n: int) -> None:
            rng = random.Random(n)
            while not down.is_set():
                subject = rng.choice(SUBJECTS)
                body = {"decisions": [{"purpose": rng.choice(PURPOSES), "granted": rng.random() < 0.6}],
                        "policy_version": "v1", "source": {"channel": "server"}}
                try:
                    status, answer = server.call("POST", f"/v1/subjects/{subject}/consents", body, key)
                except (OSError, http.client.HTTPException):  # refused, or cut off mid-answer: server gone
                    return
                if status == 201:
                    with lock:
                        acknowledged[subject].update(e["event_id"] for e in answer["events"])

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
        for thread in threads:
            thread.start()
        time.sleep(random.uniform(1.0, 3.0))
        server.kill()  # the whole process group, mid-write
        down.set()
        for thread in threads:
            thread.join(timeout=40)
        assert not any(thread.is_alive() for thread in threads)
    finally:
        server.stop()

    total = sum(len(ids) for ids in acknowledged.values())
    assert total > 50, "the kill came before the load did"

    restarted = start_server(tmp_path, database_url=server.database_url)
    try:
        for subject, ids in acknowledged.items():
            if not ids:
                continue
            events = history(restarted, key, subject)
            assert verify_chain(events) == (len(events), None), subject
            missing = ids - {e["event_id"] for e in events}
            assert not missing, f"{subject}: {len(missing)} acknowledged events lost"
    finally:
        restarted.stop()

    rebuilt = subprocess.run([sys.executable, "-m", "consent_api.cli", "rebuild-state", "--check"],
                             env={"CONSENT_DATABASE_URL": server.database_url, "PYTHONPATH": str(ROOT)},
                             capture_output=True, text=True, timeout=60)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "0 differences, 0 broken chains" in rebuilt.stderr
