"""A real `consent-api serve` (granian, several worker processes) on 127.0.0.1 and a temp store."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

OPERATOR = "live-operator-token"
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LiveServer:
    url: str
    database_url: str
    process: subprocess.Popen
    log: Path

    def call(self, method: str, path: str, body=None, token: str | None = None, headers=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def kill(self) -> None:
        """SIGKILL the server's whole process group (granian's main process and its workers)."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(tmp: Path, workers: int = 2, database_url: str | None = None,
                 env: dict[str, str] | None = None, ready_path: str = "/readyz") -> LiveServer:
    port = free_port()
    database_url = database_url or f"sqlite:///{tmp}/live.db"
    # PYTHONPATH: the server runs this checkout, whatever else the environment has installed
    env = {**os.environ, "CONSENT_DATABASE_URL": database_url, "CONSENT_ADMIN_TOKEN": OPERATOR,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           **(env or {})}
    log = tmp / f"server-{port}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "consent_api.cli", "serve", "--host", "127.0.0.1",
             "--port", str(port), "--workers", str(workers)],
            env=env, stdout=out, stderr=subprocess.STDOUT, cwd=tmp, start_new_session=True)
    server = LiveServer(f"http://127.0.0.1:{port}", database_url, process, log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"consent-api serve exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(server.url + ready_path, timeout=1) as response:
                if response.status == 200:
                    return server
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"consent-api serve did not become ready: {log.read_text()[-2000:]}")


@pytest.fixture
def live_server(tmp_path):
    server = start_server(tmp_path)
    yield server
    server.stop()
