"""The store's upkeep: migrate, migrate-store (to another store), rebuild-state and
rotate-signing-key."""

from __future__ import annotations

import argparse
import sys

from consent_api.commands.common import shown, store_of
from consent_api.config import Settings
from consent_api.domain.clock import system_clock
from consent_api.progress import TenantBar


def cmd_rebuild_state(args: argparse.Namespace, settings: Settings) -> int:
    from consent_api.services.rebuild import rebuild_state

    def progress(n: int) -> None:
        if n % 1000 == 0:
            print(f"\r  {n:,} subjects", end="", file=sys.stderr, flush=True)

    report = rebuild_state(store_of(settings), fix=not args.check, progress=progress)
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
    store = store_of(settings)
    print(f"migrating {shown(settings.database_url)}")
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
    source, target = store_of(settings, args.source), store_of(settings, args.target)
    print(f"copying {shown(args.source)} -> {shown(args.target)}", file=sys.stderr)
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

    keys = KeyRing(store_of(settings), system_clock, settings.key_encryption_key)
    kid = keys.rotate()
    print(f"new signing key {kid} is active; older keys stay in the JWKS and keep verifying "
          "what they signed (running servers pick the new key up within a minute)")
    return 0
