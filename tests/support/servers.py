"""Real servers on 127.0.0.1 for the tests and the benchmarks (bench/ imports this module, so
the servers a benchmark measures start exactly as the suite's do, by code the suite runs).

A server runs in its own process group on a free port, logs to a file (never to a pipe: a full
pipe stalls it), and counts as started once its ready path answers 200 *and* every granian
worker has logged that it started; before that a request could only reach the workers that
were quicker, which a loaded machine makes arbitrarily many. ``stop()`` sends SIGTERM to the
main process, as an orchestrator does, and SIGKILLs the whole group if it lingers.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.support.api import OPERATOR_TOKEN, Api, HttpClient

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 60  # a bound for a loaded machine; a quiet one starts in about a second


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
    database_url: str | None = None

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def api(self) -> Api:
        return Api(HttpClient(self.url))

    def connect(self, timeout_s: float = 10) -> socket.socket:
        """A raw TCP connection, for what urllib cannot send: chunked or trickled bodies,
        pipelined requests, made-up methods."""
        return socket.create_connection(("127.0.0.1", self.port), timeout=timeout_s)

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
            if int(fields[2]) == self.process.pid and fields[0] != "Z":  # pgrp, not a zombie
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

    def kill(self) -> None:
        """SIGKILL the whole process group (granian's main process and its workers), mid-work."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self._wait_for_group()

    def stop(self, timeout_s: float = 30) -> None:
        """SIGTERM to the main process, which drains and stops its workers; SIGKILL to the
        group if that takes longer than timeout_s. Returns once no process of the group is left."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                pass
        self.kill()

    def _wait_for_group(self, timeout_s: float = 10) -> None:
        deadline = time.monotonic() + timeout_s
        while self.pids() and time.monotonic() < deadline:
            time.sleep(0.05)

    def wait_started(self, ready_path: str, workers: int, timeout_s: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.process.returncode}):\n{self.tail()}")
            if self._answers(ready_path) and self._workers_started() >= workers:
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not start within {timeout_s:.0f} s:\n{self.tail()}")

    def _answers(self, path: str) -> bool:
        try:
            with urllib.request.urlopen(self.url + path, timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def _workers_started(self) -> int:
        # granian's main process logs this once a worker has imported the app and serves
        return self.log.read_text(errors="replace").count("Started worker-")

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


def read_response(conn: socket.socket) -> bytes:
    """One HTTP/1.1 response with a Content-Length body, read whole off a kept-alive connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(rest) < length:
        chunk = conn.recv(65536)
        assert chunk, "connection closed mid-body"
        rest += chunk
    return head + b"\r\n\r\n" + rest


def scrape(server: Server) -> str:
    """The server's /metrics text."""
    with urllib.request.urlopen(server.url + "/metrics", timeout=10) as response:
        return response.read().decode()


def start(name: str, argv: list[str], workdir: Path, *, port: int | None = None, workers: int = 1,
          ready_path: str = "/readyz", env: dict[str, str] | None = None, log_name: str | None = None,
          database_url: str | None = None) -> Server:
    """Run ``python argv`` (a granian server of `workers` workers listening on port) from workdir."""
    port = port or free_port()
    log = workdir / (log_name or f"server-{port}.log")
    # PYTHONPATH: the server runs this checkout, whatever else the environment has installed
    full_env = {**os.environ, **(env or {}),
                "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, *argv], env=full_env, stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT, cwd=workdir, start_new_session=True)
    server = Server(name, f"http://127.0.0.1:{port}", process, log, database_url)
    server.wait_started(ready_path, workers)
    return server


def serve(workdir: Path, *, workers: int = 2, threads: int | None = None, database_url: str | None = None,
          env: dict[str, str] | None = None, ready_path: str = "/readyz", log_name: str | None = None) -> Server:
    """`consent-api serve` on a free port with the tests' operator token; a fresh SQLite file
    in workdir unless database_url names a store."""
    port = free_port()
    database_url = database_url or f"sqlite:///{workdir}/consent.db"
    argv = ["-m", "consent_api.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(workers), *(["--threads", str(threads)] if threads else [])]
    env = {"CONSENT_DATABASE_URL": database_url, "CONSENT_ADMIN_TOKEN": OPERATOR_TOKEN, **(env or {})}
    return start("consent-api serve", argv, workdir, port=port, workers=workers, ready_path=ready_path,
                 env=env, log_name=log_name, database_url=database_url)


@contextlib.contextmanager
def serving(workdir: Path, **options) -> Iterator[Server]:
    """serve(), stopped on the way out."""
    server = serve(workdir, **options)
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def serving_files(handler: type[SimpleHTTPRequestHandler]) -> Iterator[str]:
    """A static file server on a free port of 127.0.0.1, in a thread; yields its origin."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="file-server", daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
