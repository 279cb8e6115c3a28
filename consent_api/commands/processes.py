"""The long-running processes: serve (granian and the app, with the background worker as its
child), worker (webhook deliveries and the rights-request tick), and tick-requests, one round of
that tick."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from consent_api import __version__
from consent_api.commands.common import deps_of, print_json, store_of
from consent_api.commands.tenants import seed_and_show_demo
from consent_api.config import Settings
from consent_api.domain.clock import system_clock

if TYPE_CHECKING:
    from consent_api.services.deps import Deps


def _metrics_dir() -> tuple[Path, bool]:
    """Where granian's workers pool their metrics (prometheus_client multiprocess mode), and
    whether it was made here (and is to be removed after).

    An operator's PROMETHEUS_MULTIPROC_DIR is emptied of the last run's files; otherwise a
    fresh temporary directory is made. Set before any worker starts, so all of them use it."""
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
        return path, False
    path = Path(tempfile.mkdtemp(prefix="consent-api-metrics-"))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    return path, True


def _port_in_use(host: str, port: int) -> str | None:
    """Why host:port cannot be listened on, or None. granian binds with SO_REUSEPORT, so a second
    server on a port already served would start and silently take half of its connections."""
    try:
        family, kind, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port in TIME_WAIT is free
            probe.bind(address)
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from consent_api.errors import Unavailable
    from consent_api.security.signing_keys import KeyRing

    settings.serve_runs_worker  # noqa: B018 - an unknown CONSENT_WORKER value stops serve here, before it starts
    busy = _port_in_use(args.host, args.port)
    if busy:
        print(f"error: cannot listen on {args.host}:{args.port}: {busy} (is another server running "
              "there? choose another with --port)", file=sys.stderr)
        return 2
    store = store_of(settings)
    try:
        store.migrate()  # schema and indexes in place before any worker writes
        KeyRing(store, system_clock, settings.key_encryption_key).jwks()  # one key, before workers race
    except Unavailable as exc:
        print(f"warning: the store does not answer ({exc.detail}); starting anyway: /readyz answers "
              "503 and the indexes are made once it does", file=sys.stderr)
    if args.demo:
        seed_and_show_demo(deps_of(settings, store), args.demo_keys_file)
    store.close()
    metrics_dir, made_metrics_dir = _metrics_dir()
    if not settings.admin_token:
        print("note: CONSENT_ADMIN_TOKEN is not set, so POST /v1/tenants is closed; "
              "use `consent-api tenant create`.", file=sys.stderr)
    print(f"consent_api {__version__} on http://{args.host}:{args.port} "
          f"({args.workers} workers, store {settings.database_url.split('://')[0]})", file=sys.stderr)
    background = _start_worker(settings)
    # SIGTERM/SIGINT: granian stops accepting, lets each worker finish its requests (for at
    # most --shutdown-timeout seconds), and each worker closes its store (web/wsgi.py).
    try:
        serve_wsgi("consent_api.web.wsgi:app", args.host, args.port, args.workers, args.threads,
                   kill_timeout=args.shutdown_timeout, preload="consent_api.web.app")
    finally:
        _stop_worker(background)
    if made_metrics_dir:
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def request_ticker(settings: Settings):
    """The rights-request scheduler on a thread of the background worker, or None when
    CONSENT_REQUEST_TICK_SECONDS is 0. Its store is opened on its own thread, at its first round."""
    if settings.request_tick_seconds <= 0:
        return None
    from consent_api.background import Every
    from consent_api.services import requests

    opened: list[Deps] = []

    def round_() -> None:
        if not opened:
            opened.append(deps_of(settings))
        requests.tick(opened[0])

    return Every("requests-tick", settings.request_tick_seconds, round_).start()


def cmd_tick_requests(args: argparse.Namespace, settings: Settings) -> int:
    from consent_api.services import requests

    marked = requests.tick(deps_of(settings))
    print_json([{"tenant_id": t, "request_id": r, "notice": n} for t, r, n in marked])
    return 0


def _start_worker(settings: Settings) -> subprocess.Popen | None:
    """serve's background work (webhook deliveries and the rights-request tick): `consent-api
    worker` as a child that ends with this process, at a lower CPU priority (CONSENT_WORKER_NICE),
    unless CONSENT_WORKER (or CONSENT_WEBHOOK_WORKER) is off, which leaves both to a separate
    `consent-api worker`. A process of its own rather than threads in each granian worker: its
    sends, their waits and the tick take no request thread and no GIL from the API, and the
    store's lease still lets one deliver when several servers share a store."""
    if not settings.serve_runs_worker:
        return None
    return subprocess.Popen([sys.executable, "-m", "consent_api.cli", "worker", "--parent-pid", str(os.getpid()),
                             "--nice", str(settings.worker_nice)], stdin=subprocess.DEVNULL)


def _stop_worker(process: subprocess.Popen | None) -> None:
    if process is None:
        return
    process.terminate()  # it finishes the sends under way (at most the 10 s send timeout) and records them
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    import signal
    import threading
    import time

    from consent_api.services.delivery import Worker
    from consent_api.web import requestlog

    requestlog.install(settings.log_level)
    if args.nice:
        os.nice(args.nice)  # the API (our parent, when serve started us) keeps the CPU first
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if args.parent_pid:
        def orphaned() -> None:  # serve was killed without stopping us: stop too
            while not stop.wait(0.5):
                if os.getppid() != args.parent_pid:
                    stop.set()
        threading.Thread(target=orphaned, name="parent-watch", daemon=True).start()
    deps = deps_of(settings)
    worker = Worker(deps)
    ticker = request_ticker(settings)
    tick = f"request tick every {settings.request_tick_seconds} s" if ticker is not None else "no request tick"
    print(f"worker {worker.holder} started (store {settings.database_url.split('://')[0]}, webhook lease "
          f"{settings.webhook_lease_s} s, {tick}, nice {os.nice(0)})", file=sys.stderr, flush=True)
    started = time.monotonic()
    try:
        worker.run(stop)
    finally:
        if ticker is not None:
            ticker.stop()
        deps.store.close()
    print(f"worker stopped after {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    return 0


def serve_wsgi(target: str, host: str, port: int, workers: int, threads: int,
               kill_timeout: int | None = None, preload: str | None = None) -> None:
    """Serve a WSGI app ("module:attribute") the way production does; bench/ serves its bare
    Flask baseline through this same function, so both run under identical settings.

    granian serves it through its RSGI interface and consent_api.web.rsgi: request bodies
    arrive on the event loop, within CONSENT_BODY_TIMEOUT_S and CONSENT_MAX_BODY_BYTES,
    before the app runs on one of `threads` threads (granian has no deadline for a WSGI body
    read, so a slow client would hold a thread).

    preload names a module the main process imports before it forks the workers (one that
    only defines things: the target itself may open stores and threads, which must be the
    workers' own). The workers then share its pages instead of each importing its own copy,
    and gc.freeze() keeps the collector from writing to (and so copying) every shared object:
    the server's whole PSS under load fell from 110 to 97 MiB with two workers."""
    import gc
    import importlib

    from granian import Granian
    from granian.constants import Interfaces

    from consent_api.web.rsgi import SERVE_ENV

    os.environ[SERVE_ENV] = json.dumps({"target": target, "threads": threads})  # read by each worker
    if preload:
        importlib.import_module(preload)
    gc.freeze()
    Granian(
        "consent_api.web.rsgi:load", factory=True, address=host, port=port,
        interface=Interfaces.RSGI, workers=workers, blocking_threads=1, backlog=2048,
        log_access=False, workers_kill_timeout=kill_timeout,
    ).serve()
