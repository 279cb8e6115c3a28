"""tenant create, key create and seed-demo: each prints the keys it issues, once."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from consent_api.commands.common import deps_of, print_json
from consent_api.config import Settings

if TYPE_CHECKING:
    from consent_api.services.deps import Deps


def seed_and_show_demo(deps: Deps, keys_file: str | None) -> None:
    """Create the demo tenant (or fresh keys for it) and print its keys, also to keys_file (mode 0600)."""
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
    seed_and_show_demo(deps_of(settings), args.keys_file)
    return 0


def cmd_tenant_create(args: argparse.Namespace, settings: Settings) -> int:
    from consent_api.services import tenants

    tenant, issued = tenants.create_tenant(deps_of(settings), args.name)
    print_json({"id": tenant.id, "name": tenant.name, "admin_key": issued.secret,
                 "admin_key_id": issued.key.id})
    return 0


def cmd_key_create(args: argparse.Namespace, settings: Settings) -> int:
    from consent_api.services import tenants

    deps = deps_of(settings)
    tenants.get_tenant(deps, args.tenant)
    issued = tenants.issue_key(deps, args.tenant, name=args.name, type=args.type,
                               scopes=args.scope or [], origins=args.origin or [])
    print_json({"id": issued.key.id, "key": issued.secret, "type": issued.key.type,
                 "scopes": list(issued.key.scopes), "origins": list(issued.key.origins)})
    return 0
