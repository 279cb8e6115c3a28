"""export (the tenant's audit export, its signed manifest and the JWKS) and verify-export."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from consent_api.commands.common import deps_of
from consent_api.config import Settings
from consent_api.progress import Progress

if TYPE_CHECKING:
    from consent_api.services.deps import Deps


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

    deps = deps_of(settings)
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
