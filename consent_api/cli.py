"""consent-api: serve, tenant create, key create, seed-demo, rebuild-state.

Every command reads CONSENT_DATABASE_URL (default sqlite:///./consent.db)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from consent_api import __version__
from consent_api.config import Settings
from consent_api.domain.clock import system_clock


def _store(settings: Settings):
    from consent_api.store.open import open_store

    return open_store(settings.database_url)


def _print_json(data) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from consent_api.security.signing_keys import KeyRing

    store = _store(settings)
    KeyRing(store, system_clock, settings.key_encryption_key).jwks()  # one key, before workers race
    if args.demo:
        _seed_demo(store, args.demo_keys_file)
    store.close()
    if not settings.admin_token:
        print("note: CONSENT_ADMIN_TOKEN is not set, so POST /v1/tenants is closed; "
              "use `consent-api tenant create`.", file=sys.stderr)
    print(f"consent_api {__version__} on http://{args.host}:{args.port} "
          f"({args.workers} workers, store {settings.database_url.split('://')[0]})", file=sys.stderr)
    serve_wsgi("consent_api.web.wsgi:app", args.host, args.port, args.workers, args.threads)
    return 0


def serve_wsgi(target: str, host: str, port: int, workers: int, threads: int) -> None:
    """Serve a WSGI app ("module:attribute") the way production does; bench/ serves its bare
    Flask baseline through this same function, so both run under identical settings."""
    from granian import Granian
    from granian.constants import Interfaces

    Granian(
        target, address=host, port=port, interface=Interfaces.WSGI, workers=workers,
        blocking_threads=threads, backlog=2048, log_access=False,
    ).serve()


def _seed_demo(store, keys_file: str | None) -> None:
    from consent_api.services.demo import seed_demo

    tenant_id, admin, publishable, created = seed_demo(store, system_clock)
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
    _seed_demo(_store(settings), args.keys_file)
    return 0


def cmd_tenant_create(args: argparse.Namespace, settings: Settings) -> int:
    from consent_api.services import tenants

    tenant, issued = tenants.create_tenant(_store(settings), system_clock, args.name)
    _print_json({"id": tenant.id, "name": tenant.name, "admin_key": issued.secret,
                 "admin_key_id": issued.key.id})
    return 0


def cmd_key_create(args: argparse.Namespace, settings: Settings) -> int:
    from consent_api.services import tenants

    store = _store(settings)
    tenants.get_tenant(store, args.tenant)
    issued = tenants.issue_key(store, system_clock, args.tenant, name=args.name, type=args.type,
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
          f"{len(report.broken_chains)} broken chains", file=sys.stderr)
    for diff in report.differences[:50]:
        print(f"  differs: {diff.tenant_id}/{diff.subject_id}: {', '.join(diff.fields)}"
              + ("" if args.check else " (rebuilt)"))
    for broken in report.broken_chains[:50]:
        print(f"  broken chain: {broken}")
    return 1 if report.broken_chains or (args.check and report.differences) else 0


def cmd_rotate_signing_key(args: argparse.Namespace, settings: Settings) -> int:
    from consent_api.security.signing_keys import KeyRing

    keys = KeyRing(_store(settings), system_clock, settings.key_encryption_key)
    kid = keys.rotate()
    print(f"new signing key {kid} is active; older keys stay in the JWKS and keep verifying "
          "what they signed (running servers pick the new key up within a minute)")
    return 0


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
    serve.add_argument("--demo", action="store_true",
                       help="create the demo tenant first (or fresh keys for it) and print its keys")
    serve.add_argument("--demo-keys-file", default="demo-keys.env",
                       help="with --demo, also write the keys here (mode 0600)")
    serve.set_defaults(func=cmd_serve)

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
                    choices=["admin", "consents:write", "consents:read", "audit:read"],
                    help="repeat for several scopes (secret keys)")
    kc.add_argument("--origin", action="append", help="repeat for several origins (publishable keys)")
    kc.set_defaults(func=cmd_key_create)

    seed = sub.add_parser("seed-demo", help="create the demo tenant with common app purposes")
    seed.add_argument("--keys-file", default=None, help="also write the keys to this file (mode 0600)")
    seed.set_defaults(func=cmd_seed_demo)

    rotate = sub.add_parser("rotate-signing-key",
                            help="make a new signing key for receipts, tokens and manifests")
    rotate.set_defaults(func=cmd_rotate_signing_key)

    rebuild = sub.add_parser("rebuild-state", help="recompute every state from the ledger")
    rebuild.add_argument("--check", action="store_true", help="report differences without fixing them")
    rebuild.set_defaults(func=cmd_rebuild_state)
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
