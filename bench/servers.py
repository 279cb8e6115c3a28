"""Start and stop servers on 127.0.0.1 in their own process group, and read their memory."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen
    log: Path

    def pids(self) -> list[int]:
        """Every live process of the server's process group (granian's main and workers)."""
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == self.process.pid:  # pgrp
                found.append(int(entry))
        return found

    def memory_kib(self) -> dict[int, tuple[int, int]]:
        """Per process: (VmRSS, RssAnon). RSS also counts mapped file pages (SQLite reads the
        database through mmap); RssAnon is only what the process allocated itself."""
        out = {}
        for pid in self.pids():
            fields = {}
            try:
                with open(f"/proc/{pid}/status") as fh:
                    for line in fh:
                        if line.startswith(("VmRSS:", "RssAnon:")):
                            fields[line.split(":")[0]] = int(line.split()[1])
            except OSError:
                continue
            out[pid] = (fields.get("VmRSS", 0), fields.get("RssAnon", 0))
        return out

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
            except ProcessLookupError:
                pass


def start(name: str, argv: list[str], ready_path: str, port: int, log: Path,
          env: dict[str, str] | None = None, timeout_s: float = 60) -> Server:
    """Run argv (a Python module's arguments) with logs to a file, never to a pipe."""
    full_env = {**os.environ, **(env or {}),
                "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    with open(log, "ab") as out:
        process = subprocess.Popen([sys.executable, *argv], env=full_env, stdout=out,
                                   stderr=subprocess.STDOUT, cwd=log.parent, start_new_session=True)
    server = Server(name, f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(server.url + ready_path, timeout=2) as response:
                if response.status == 200:
                    return server
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"{name} did not become ready:\n{log.read_text()[-3000:]}")
