"""`consent-api serve` runs one background process, `consent-api worker`, at a lower CPU
priority: it delivers webhooks and marks rights requests due_soon / overdue. CONSENT_WORKER=off
(or its first name, CONSENT_WEBHOOK_WORKER=off) leaves both to a separate worker."""

from __future__ import annotations

import os
import time

import pytest

from consent_api.config import Settings
from tests.support import servers
from tests.support.receiver import receiving

WAIT_S = 30  # a bound for a loaded machine; the worker's first tick runs as it starts


def cmdline(pid: int) -> list[str]:
    with open(f"/proc/{pid}/cmdline", "rb") as fh:
        return [part.decode() for part in fh.read().split(b"\0") if part]


def niceness(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as fh:
        return int(fh.read().rsplit(")", 1)[1].split()[16])  # field 19 of proc(5)


def workers(server: servers.Server) -> list[int]:
    return [pid for pid in server.pids() if "worker" in cmdline(pid)[3:4]]


def wait_for_first_line(server: servers.Server) -> None:
    """Until the worker has said it started, which it says once it has lowered its priority: the
    server answers before then, since the worker starts beside it, not ahead of it."""
    deadline = time.monotonic() + WAIT_S
    while "webhook lease" not in server.log.read_text(errors="replace") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "webhook lease" in server.log.read_text(errors="replace"), server.tail()


def test_serve_runs_one_worker_at_lower_priority_that_marks_requests_due_and_delivers_it(tmp_path):
    env = {"CONSENT_REQUEST_TICK_SECONDS": "1", "CONSENT_WEBHOOK_ALLOW_PRIVATE": "1"}
    with receiving() as receiver, servers.serving(tmp_path, env=env) as server:
        [worker] = workers(server)
        wait_for_first_line(server)
        assert niceness(worker) == niceness(server.process.pid) + Settings().worker_nice
        assert all(niceness(pid) == niceness(server.process.pid) for pid in server.pids() if pid != worker)
        tenant = server.api().new_tenant("Ticked")
        tenant.post("/v1/webhooks", {"url": receiver.url, "types": ["request.due_soon"]}, expect=201)
        tenant.put("/v1/settings", {"request_deadline": {"days": 1, "calendar": "calendar_days"}}, expect=200)
        opened = tenant.post("/v1/subjects/u1/requests", {"type": "copy"}, expect=201).json
        [got] = receiver.wait_for(1, timeout_s=WAIT_S)  # the tick marked it, the same process sent it
        assert got.json["type"] == "request.due_soon"
        assert got.json["data"]["request"]["id"] == opened["id"]
        assert got.json["data"]["request"]["notices"] == ["due_soon"]
        assert tenant.get(f"/v1/requests/{opened['id']}", expect=200).json["notices"] == ["due_soon"]
        assert len(workers(server)) == 1
    assert not os.path.exists(f"/proc/{worker}") or "worker" not in cmdline(worker)  # it ended with serve


@pytest.mark.parametrize("name", ["CONSENT_WORKER", "CONSENT_WEBHOOK_WORKER"])
def test_serve_runs_no_worker_when_it_is_off(tmp_path, name):
    with servers.serving(tmp_path, env={name: "off"}) as server:
        assert workers(server) == []
        assert "webhook lease" not in server.tail()  # the worker's first line


def test_the_new_name_wins_over_the_old_one_and_anything_but_on_or_off_is_refused():
    assert Settings(worker="on", webhook_worker="off").serve_runs_worker
    assert not Settings(worker="off", webhook_worker="on").serve_runs_worker
    assert not Settings(webhook_worker="OFF").serve_runs_worker
    assert Settings().serve_runs_worker
    with pytest.raises(ValueError, match="CONSENT_WORKER is on or off"):
        Settings(worker="no").serve_runs_worker  # noqa: B018
