"""consent-api: serve, worker, tenant create, key create, seed-demo, rebuild-state, export, verify-export,
migrate, migrate-store, rotate-signing-key, tick-requests.

Every command reads CONSENT_DATABASE_URL (default sqlite:///./consent.db)."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from consent_api import __version__
from consent_api.config import Settings, deps_for
from consent_api.domain.clock import system_clock
from consent_api.domain.model import Scope
from consent_api.progress import Progress, TenantBar

if TYPE_CHECKING:
    from consent_api.services.deps import Deps
    from consent_api.store.port import Store


def _store(settings: Settings, url: str | None = None) -> Store:
    from consent_api.store.open import MongoOptions, open_store

    return open_store(url or settings.database_url, MongoOptions(**settings.mongo_options()))


def _deps(settings: Settings, store: Store | None = None) -> Deps:
    return deps_for(settings, store or _store(settings), system_clock)


def _shown(url: str) -> str:
    """A database URL fit for a terminal: the password replaced."""
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", url)


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


def _print_json(data) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


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
    store = _store(settings)
    try:
        store.migrate()  # schema and indexes in place before any worker writes
        KeyRing(store, system_clock, settings.key_encryption_key).jwks()  # one key, before workers race
    except Unavailable as exc:
        print(f"warning: the store does not answer ({exc.detail}); starting anyway: /readyz answers "
              "503 and the indexes are made once it does", file=sys.stderr)
    if args.demo:
        _seed_demo(_deps(settings, store), args.demo_keys_file)
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


def _request_ticker(settings: Settings):
    """The rights-request scheduler on a thread of the background worker, or None when
    CONSENT_REQUEST_TICK_SECONDS is 0. Its store is opened on its own thread, at its first round."""
    if settings.request_tick_seconds <= 0:
        return None
    from consent_api.background import Every
    from consent_api.services import requests

    opened: list[Deps] = []

    def round_() -> None:
        if not opened:
            opened.append(_deps(settings))
        requests.tick(opened[0])

    return Every("requests-tick", settings.request_tick_seconds, round_).start()


def cmd_tick_requests(args: argparse.Namespace, settings: Settings) -> int:
    from consent_api.services import requests

    marked = requests.tick(_deps(settings))
    _print_json([{"tenant_id": t, "request_id": r, "notice": n} for t, r, n in marked])
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
    deps = _deps(settings)
    worker = Worker(deps)
    ticker = _request_ticker(settings)
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


def _seed_demo(deps: Deps, keys_file: str | None) -> None:
    from consent_api.services.demo import seed_demo

    tenant_id, admin, publishable, created = seed_demo(deps)
    print(("Created" if created else "Refreshed keys of") + f" the demo tenant {tenant_id}.",
          file=sys.stderr)
    lines = [f"CONSENT_DEMO_TENANT={tenant_id}", f"CONSENT_DEMO_ADMIN_KEY={admin.secret}",
             f"CONSENT_DEMO_PUBLISHABLE_KEY={publishable.secret}"]
    for line in lines:
        print("  " + line, file=sys.stderr)
    if keys_file:
        path = Path(keys_file)
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write("".join(f"export {line}\n" for line in lines))
        shown = path if path.is_absolute() or "/" in keys_file else f"./{path}"
        print(f"  (also written to {path}; load them with: . {shown})", file=sys.stderr)


def cmd_seed_demo(args: argparse.Namespace, settings: Settings) -> int:
    _seed_demo(_deps(settings), args.keys_file)
    return 0


def cmd_tenant_create(args: argparse.Namespace, settings: Settings) -> int:
    from consent_api.services import tenants

    tenant, issued = tenants.create_tenant(_deps(settings), args.name)
    _print_json({"id": tenant.id, "name": tenant.name, "admin_key": issued.secret,
                 "admin_key_id": issued.key.id})
    return 0


def cmd_key_create(args: argparse.Namespace, settings: Settings) -> int:
    from consent_api.services import tenants

    deps = _deps(settings)
    tenants.get_tenant(deps, args.tenant)
    issued = tenants.issue_key(deps, args.tenant, name=args.name, type=args.type,
                               scopes=args.scope or [], origins=args.origin or [])
    _print_json({"id": issued.key.id, "key": issued.secret, "type": issued.key.type,
                 "scopes": list(issued.key.scopes), "origins": list(issued.key.origins)})
    return 0


def cmd_rebuild_state(args: argparse.Namespace, settings: Settings) -> int:
    from consent_api.services.rebuild import rebuild_state

    def progress(n: int) -> None:
        if n % 1000 == 0:
            print(f"\r  {n:,} subjects", end="", file=sys.stderr, flush=True)

    report = rebuild_state(_store(settings), fix=not args.check, progress=progress)
    print(f"\r{report.subjects:,} subjects checked, {len(report.differences)} differences, "
          f"{len(report.broken_chains)} broken chains, {len(report.count_differences)} per-day counter "
          "rows differing", file=sys.stderr)
    for diff in report.differences[:50]:
        print(f"  differs: {diff.tenant_id}/{diff.subject_id}: {', '.join(diff.fields)}"
              + ("" if args.check else " (rebuilt)"))
    for line in report.count_differences[:50]:
        print(f"  counter differs: {line}" + ("" if args.check else " (recounted)"))
    for broken in report.broken_chains[:50]:
        print(f"  broken chain: {broken}")
    drift = report.differences or report.count_differences
    return 1 if report.broken_chains or (args.check and drift) else 0


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    store = _store(settings)
    print(f"migrating {_shown(settings.database_url)}")
    for line in store.migrate():
        print("  " + line)
    if args.shard:
        if not hasattr(store, "shard"):
            print("error: --shard applies to a MongoDB store (run it against mongos)", file=sys.stderr)
            return 2
        for line in store.shard():
            print("  " + line)
    store.close()
    return 0


def cmd_migrate_store(args: argparse.Namespace, settings: Settings) -> int:
    from consent_api.services.migration import copy_store, verify_copy

    if args.source == args.target:
        print("error: --from and --to name the same store", file=sys.stderr)
        return 2
    source, target = _store(settings, args.source), _store(settings, args.target)
    print(f"copying {_shown(args.source)} -> {_shown(args.target)}", file=sys.stderr)
    for line in target.migrate():
        print("  target: " + line, file=sys.stderr)
    try:
        copied = copy_store(source, target, progress=TenantBar())
    except KeyboardInterrupt:
        print("\ninterrupted: run the same command again to resume where it stopped", file=sys.stderr)
        return 130
    print(copied.summary(), file=sys.stderr)
    verdict = verify_copy(source, target)
    for mismatch in verdict.mismatches[:50]:
        print("  " + mismatch)
    print(verdict.summary())
    source.close()
    target.close()
    return 0 if verdict.ok else 1


def cmd_rotate_signing_key(args: argparse.Namespace, settings: Settings) -> int:
    from consent_api.security.signing_keys import KeyRing

    keys = KeyRing(_store(settings), system_clock, settings.key_encryption_key)
    kid = keys.rotate()
    print(f"new signing key {kid} is active; older keys stay in the JWKS and keep verifying "
          "what they signed (running servers pick the new key up within a minute)")
    return 0


def _timestamp(value: str):
    from consent_api.domain.clock import parse_ts

    try:
        return parse_ts(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an RFC 3339 time such as 2026-03-01T00:00:00Z ({exc})") from exc


def _only_tenant(deps: Deps, tenant_id: str | None) -> str:
    from consent_api.services import tenants

    if tenant_id:
        return tenants.get_tenant(deps, tenant_id).id
    found = [t.id for t in deps.store.iter_tenants()]
    if len(found) != 1:
        raise ValueError("the store holds " + (f"{len(found)} tenants" if found else "no tenant")
                         + "; name one with --tenant")
    return found[0]


def _write_private(path: Path, text: str) -> None:
    """Write next to the export atomically, so a reader never sees half a manifest."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from consent_api.services import audit

    deps = _deps(settings)
    tenant_id = _only_tenant(deps, args.tenant)
    query = audit.ExportQuery(since=args.since, until=args.until, purpose=args.purpose,
                              subject_id=args.subject_id)
    export_plan = audit.plan(deps, tenant_id, query)
    out = Path(args.out)
    resume = args.resume and out.exists()
    if args.resume and not resume:
        print(f"note: {out} does not exist yet; starting a new export", file=sys.stderr)
    progress = Progress(audit.count(deps, tenant_id, export_plan),
                        "verifying and resuming" if resume else "exporting")
    with out.open("r+b" if resume else "w+b") as fh:
        written = audit.write_export(deps, tenant_id, export_plan, args.format, fh, resume=resume,
                                     progress=progress.update)
        fh.flush()
        os.fsync(fh.fileno())
    progress.finish(written.count)
    manifest_path = out.with_name(out.name + ".manifest.jws")
    jwks_path = out.with_name(out.name + ".jwks.json")
    _write_private(manifest_path, written.manifest + "\n")
    _write_private(jwks_path, json.dumps(deps.keys.jwks(), indent=2) + "\n")
    kept = f" ({written.kept:,} kept from the earlier run)" if resume else ""
    print(f"wrote {written.count:,} events{kept} to {out}\n"
          f"  manifest: {manifest_path}\n  jwks:     {jwks_path}\n"
          f"verify with: consent-api verify-export {out} --manifest {manifest_path} --jwks {jwks_path}",
          file=sys.stderr)
    return 0


def cmd_verify_export(args: argparse.Namespace, settings: Settings) -> int:
    from consent_api import verify

    return verify.run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="consent-api", description="Collect, prove and honour users' consent, per purpose.",
        epilog="Configuration comes from CONSENT_* environment variables; see README.md.")
    parser.add_argument("--version", action="version", version=f"consent-api {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the HTTP API under the production server (granian)")
    serve.add_argument("--host", default=os.environ.get("CONSENT_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("CONSENT_PORT", "8000")))
    serve.add_argument("--workers", type=int, default=int(os.environ.get("CONSENT_WORKERS", "2")),
                       help="worker processes (default 2; measured best on 2 cores)")
    serve.add_argument("--threads", type=int, default=int(os.environ.get("CONSENT_THREADS", "8")),
                       help="blocking threads per worker (default 8)")
    serve.add_argument("--shutdown-timeout", type=int,
                       default=int(os.environ.get("CONSENT_SHUTDOWN_TIMEOUT", "25")),
                       help="seconds a worker may take to finish its requests on SIGTERM (default 25)")
    serve.add_argument("--demo", action="store_true",
                       help="create the demo tenant first (or fresh keys for it) and print its keys")
    serve.add_argument("--demo-keys-file", default="demo-keys.env",
                       help="with --demo, also write the keys here (mode 0600)")
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="deliver webhooks (one worker delivers at a time, by a lease in "
                                           "the store) and mark rights requests due_soon / overdue; `serve` "
                                           "runs one unless CONSENT_WORKER=off")
    worker.add_argument("--parent-pid", type=int, default=None, help=argparse.SUPPRESS)
    worker.add_argument("--nice", type=int, default=0,
                        help="lower this process's CPU priority by N first (serve's child: CONSENT_WORKER_NICE)")
    worker.set_defaults(func=cmd_worker)

    tenant = sub.add_parser("tenant", help="manage tenants").add_subparsers(dest="action", required=True)
    tc = tenant.add_parser("create", help="create a tenant and print its first admin key (once)")
    tc.add_argument("--name", required=True)
    tc.set_defaults(func=cmd_tenant_create)

    key = sub.add_parser("key", help="manage API keys").add_subparsers(dest="action", required=True)
    kc = key.add_parser("create", help="issue an API key and print it (once)")
    kc.add_argument("--tenant", required=True, help="tenant id (ten_...)")
    kc.add_argument("--name", required=True)
    kc.add_argument("--type", choices=["secret", "publishable"], default="secret")
    kc.add_argument("--scope", action="append",
                    choices=[str(s) for s in Scope],
                    help="repeat for several scopes (secret keys)")
    kc.add_argument("--origin", action="append", help="repeat for several origins (publishable keys)")
    kc.set_defaults(func=cmd_key_create)

    seed = sub.add_parser("seed-demo", help="create the demo tenant with common app purposes")
    seed.add_argument("--keys-file", default=None, help="also write the keys to this file (mode 0600)")
    seed.set_defaults(func=cmd_seed_demo)

    rotate = sub.add_parser("rotate-signing-key",
                            help="make a new signing key for receipts, tokens and manifests")
    rotate.set_defaults(func=cmd_rotate_signing_key)

    rebuild = sub.add_parser("rebuild-state", help="recompute every state and per-day counter from the ledger")
    rebuild.add_argument("--check", action="store_true", help="report differences without fixing them")
    rebuild.set_defaults(func=cmd_rebuild_state)

    migrate = sub.add_parser("migrate", help="create or upgrade the store's schema and indexes, "
                                             "printing each step")
    migrate.add_argument("--shard", action="store_true",
                         help="MongoDB through mongos: also shard the big collections (docs/scaling.md)")
    migrate.set_defaults(func=cmd_migrate)

    move = sub.add_parser("migrate-store", help="copy every tenant to another store, resumably, "
                                                "and verify every chain head")
    move.add_argument("--from", dest="source", required=True, metavar="URL", help="e.g. sqlite:///consent.db")
    move.add_argument("--to", dest="target", required=True, metavar="URL",
                      help="e.g. mongodb://mongo1,mongo2,mongo3/consent_api?replicaSet=rs0")
    move.set_defaults(func=cmd_migrate_store)

    export = sub.add_parser("export", help="write the tenant's audit export, its signed manifest and the JWKS")
    export.add_argument("--out", required=True, help="the export file; FILE.manifest.jws and "
                                                     "FILE.jwks.json are written next to it")
    export.add_argument("--format", choices=["ndjson", "csv"], default="ndjson")
    export.add_argument("--since", type=_timestamp, help="recorded_at from this time (inclusive)")
    export.add_argument("--until", type=_timestamp, help="recorded_at before this time (exclusive)")
    export.add_argument("--purpose", help="only events about this purpose")
    export.add_argument("--subject-id", help="only this subject's chain")
    export.add_argument("--tenant", help="tenant id (ten_...); optional when the store has one tenant")
    export.add_argument("--resume", action="store_true",
                        help="keep the complete lines already in FILE (checked against the store) "
                             "and continue after them")
    export.set_defaults(func=cmd_export)

    verify_export = sub.add_parser("verify-export", help="verify an export offline: chains, manifest "
                                                         "signature, count, digest")
    from consent_api import verify

    verify.add_arguments(verify_export)
    verify_export.set_defaults(func=cmd_verify_export)

    tick = sub.add_parser("tick-requests", help="mark rights requests due_soon or overdue once (what the worker "
                                                "does every CONSENT_REQUEST_TICK_SECONDS); prints the marks")
    tick.set_defaults(func=cmd_tick_requests)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from consent_api.errors import ConsentApiError

    try:
        return args.func(args, Settings.from_env())
    except ConsentApiError as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        for field, messages in (exc.errors or {}).items():
            print(f"  {field}: {'; '.join(messages)}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
