"""kill -9 under write load: every write the server acknowledged (201) is there after a
restart on the same file, every chain verifies, and the stored states rebuild unchanged. Every
write carries an Idempotency-Key; those left unanswered by the kill are retried after the
restart, and each key's request is then in the ledger exactly once."""

from __future__ import annotations

import dataclasses
import http.client
import json
import random
import subprocess
import sys
import threading
import time
from collections import Counter

from consent_api.domain.ledger import verify_chain
from tests.support import servers

WRITERS = 8
SUBJECTS = [f"crash-{n}" for n in range(24)]  # few enough that writers share chains
PURPOSES = ("push", "location", "marketing_sms")
LOADED = 50  # acknowledged writes before the kill, however long a loaded machine takes to get there


def retry(tenant, subject: str, body: dict, key: str):
    """Send an unanswered request again with its key until it is answered (a 409 means its
    claim is not yet stale, a bounded wait); its 201."""
    deadline = time.monotonic() + 60
    while True:
        answer = tenant.post(f"/v1/subjects/{subject}/consents", body, headers={"Idempotency-Key": key})
        if answer.status_code != 409 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert answer.status_code == 201, (key, answer.status_code, answer.text)
    return answer


def test_acknowledged_writes_survive_kill_9(tmp_path):
    server = servers.serve(tmp_path)
    try:
        tenant = server.api().new_tenant("Crash", purposes=None)
        for purpose in PURPOSES:
            tenant.put(f"/v1/purposes/{purpose}", {"kind": "processing", "title": {"en": purpose}}, expect=201)
        tenant.post("/v1/policies", {"version": "v1", "effective_at": "2026-01-01T00:00:00Z"}, expect=201)

        acknowledged: dict[str, set[str]] = {s: set() for s in SUBJECTS}
        sent: list[str] = []  # every Idempotency-Key sent
        unanswered: list[tuple[str, dict, str]] = []  # (subject, body, key) the kill left without a 201
        lock = threading.Lock()
        down = threading.Event()

        def writer(n: int) -> None:
            rng = random.Random(n)
            for i in range(10**6):
                if down.is_set():
                    return
                subject, key = rng.choice(SUBJECTS), f"w{n}-{i}"
                body = {"decisions": [{"purpose": rng.choice(PURPOSES), "granted": rng.random() < 0.6}],
                        "policy_version": "v1", "source": {"channel": "server"}}
                with lock:
                    sent.append(key)
                try:
                    answer = tenant.post(f"/v1/subjects/{subject}/consents", body, headers={"Idempotency-Key": key})
                except (OSError, http.client.HTTPException):  # refused, or cut off mid-answer: server gone
                    with lock:
                        unanswered.append((subject, body, key))
                    return
                with lock:
                    if answer.status_code == 201:
                        acknowledged[subject].update(e["event_id"] for e in answer.json["events"])
                    else:
                        unanswered.append((subject, body, key))

        def total() -> int:
            with lock:
                return sum(len(ids) for ids in acknowledged.values())

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while total() <= LOADED and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(random.uniform(0.0, 1.0))  # then at an arbitrary point of the write path
        server.kill()  # the whole process group, mid-write
        down.set()
        for thread in threads:
            thread.join(timeout=40)
        assert not any(thread.is_alive() for thread in threads)
    finally:
        server.stop()

    assert total() > LOADED, "the kill came before the load did"

    # A claim left by a request the kill cut off counts as dead after a second, not a minute.
    restarted = servers.serve(tmp_path, database_url=server.database_url,
                              env={"CONSENT_IDEMPOTENCY_CLAIM_TIMEOUT_S": "1"})
    try:
        again = dataclasses.replace(tenant, api=restarted.api())
        for subject, ids in acknowledged.items():
            if not ids:
                continue
            events = again.history(subject)
            assert verify_chain(events) == (len(events), None), subject
            missing = ids - {e["event_id"] for e in events}
            assert not missing, f"{subject}: {len(missing)} acknowledged events lost"

        assert unanswered, "the kill left no request unanswered"
        retried = {key: retry(again, subject, body, key) for subject, body, key in unanswered}
        written = Counter(json.loads(line)["idempotency_key"] for line in again.export().splitlines())
    finally:
        restarted.stop()

    assert {key: n for key, n in written.items() if n != 1} == {}, "a request written twice"
    assert set(written) == set(sent), "every request written, once retried"
    for key, answer in retried.items():
        assert written[key] == len(answer.json["events"]) == 1, key
    replays = sum(1 for answer in retried.values() if answer.headers.get("Idempotent-Replayed") == "true")
    print(f"\n{len(sent)} requests, {len(unanswered)} unanswered at the kill: {replays} replayed "
          f"(written with their answer before it), {len(unanswered) - replays} written on retry")

    rebuilt = subprocess.run([sys.executable, "-m", "consent_api.cli", "rebuild-state", "--check"],
                             env={"CONSENT_DATABASE_URL": server.database_url, "PYTHONPATH": str(servers.REPO)},
                             capture_output=True, text=True, timeout=60)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "0 differences, 0 broken chains" in rebuilt.stderr
