"""Eight writers on one subject through two worker processes: gap-free seq, a verifying chain,
no acknowledged write lost, and a ledger that rebuilds to the same state."""

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from consent_api.domain.ledger import verify_chain
from tests.support.servers import REPO

WRITERS, WRITES_EACH = 8, 6


def test_concurrent_writers_on_one_subject(live_server):
    tenant = live_server.api().new_tenant("Live", purposes=None)
    for purpose in ("push", "location", "marketing_sms"):
        tenant.put(f"/v1/purposes/{purpose}", {"kind": "processing", "title": {"en": purpose}}, expect=201)
    tenant.post("/v1/policies", {"version": "v1", "effective_at": "2026-01-01T00:00:00Z"}, expect=201)

    def writer(n: int) -> list[str]:
        acknowledged = []
        for i in range(WRITES_EACH):
            body = {"decisions": [{"purpose": ("push", "location", "marketing_sms")[(n + i) % 3],
                                   "granted": (n + i) % 2 == 0}],
                    "policy_version": "v1", "source": {"channel": "server"}}
            answer = tenant.post("/v1/subjects/shared/consents", body, expect=201).json
            acknowledged.append(answer["events"][0]["event_id"])
        return acknowledged

    with ThreadPoolExecutor(WRITERS) as pool:
        acknowledged = [e for batch in pool.map(writer, range(WRITERS)) for e in batch]

    events = tenant.history("shared")
    assert [e["seq"] for e in events] == list(range(1, WRITERS * WRITES_EACH + 1))
    assert verify_chain(events) == (WRITERS * WRITES_EACH, None)
    assert sorted(e["event_id"] for e in events) == sorted(acknowledged)

    rebuilt = subprocess.run([sys.executable, "-m", "consent_api.cli", "rebuild-state", "--check"],
                             env={"CONSENT_DATABASE_URL": live_server.database_url, "PATH": "",
                                  "PYTHONPATH": str(REPO)},
                             capture_output=True, text=True, timeout=60)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "0 differences, 0 broken chains" in rebuilt.stderr
