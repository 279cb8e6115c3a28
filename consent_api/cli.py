"""consent-api: serve, worker, tenant create, key create, seed-demo, rebuild-state, export, verify-export,
migrate, migrate-store, rotate-signing-key, tick-requests.

This module holds the command line; the commands themselves are in consent_api.commands.
Every command reads CONSENT_DATABASE_URL (default sqlite:///./consent.db)."""

from __future__ import annotations

import argparse
import os
import sys

from consent_api import __version__
from consent_api.commands.export import cmd_export, cmd_verify_export
from consent_api.commands.maintenance import cmd_migrate, cmd_migrate_store, cmd_rebuild_state, cmd_rotate_signing_key
from consent_api.commands.processes import cmd_serve, cmd_tick_requests, cmd_worker
from consent_api.commands.tenants import cmd_key_create, cmd_seed_demo, cmd_tenant_create
from consent_api.config import Settings
from consent_api.domain.model import Scope


def _timestamp(value: str):
    from consent_api.domain.clock import parse_ts

    try:
        return parse_ts(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an RFC 3339 time such as 2026-03-01T00:00:00Z ({exc})") from exc


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
