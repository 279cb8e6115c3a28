"""Audit export benchmark: does exporting a large ledger run with flat memory, how fast, and does
verify-export accept the result?

    python bench/export_bench.py                   # 1,000,000 events, a few minutes on 2 cores
    python bench/export_bench.py --events 20000    # a quick smoke run

Seeds a SQLite file in a temporary directory through the store port (Store.append, one call per
subject with several drafts; synchronous=OFF on the seeding connection only, since durability is
not what is measured), reads the file once to warm the page cache, then runs every phase in a
fresh process and reads that process's peak RSS (VmHWM) against its RSS before the phase. The
baseline is a raw ``SELECT doc FROM events`` over the export index of the same file, measured in
the same run; ratios are phase time over baseline time (wall and CPU). A last phase runs
``consent-api verify-export`` on the CLI's export.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BASE = datetime(2026, 1, 1, tzinfo=timezone.utc)
PURPOSES = ("personalized_push", "location", "marketing_sms", "analytics_cookies", "third_party_sdk")


# --- measuring inside a phase process ------------------------------------------------------------

def _status_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _reset_peak() -> None:
    try:  # Linux >= 4.0: "5" resets VmHWM to the current RSS
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


class Meter:
    def __enter__(self) -> Meter:
        _reset_peak()
        self.rss_start = _status_kb("VmRSS")
        self.t0, self.cpu0 = time.perf_counter(), time.process_time()
        self.events = self.bytes = 0
        self.note = ""
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.t0
        self.cpu = time.process_time() - self.cpu0
        self.growth_kb = max(_status_kb("VmHWM") - self.rss_start, 0)

    def report(self) -> None:
        print(json.dumps({"events": self.events, "bytes": self.bytes, "seconds": self.seconds, "cpu": self.cpu,
                          "rss_start_kb": self.rss_start, "growth_kb": self.growth_kb, "note": self.note}))


def _sink(path: str):
    return open(path, "wb", buffering=1 << 20)


# --- phases (each runs in its own process) -------------------------------------------------------

def phase_seed(db: str, events: int, per_subject: int) -> None:
    from consent_api.domain.clock import FixedClock, format_ts
    from consent_api.domain.model import Kind, PolicyVersion, Purpose
    from consent_api.security.signing_keys import KeyRing
    from consent_api.services import tenants
    from consent_api.services.deps import Deps
    from consent_api.store.sqlite import SQLiteStore

    store = SQLiteStore(db)
    store._conn().execute("PRAGMA synchronous=OFF")  # bench seeding only; the export reads normally
    clock = FixedClock(BASE)
    tenant, _ = tenants.create_tenant(Deps(store, clock, KeyRing(store, clock)), "bench")
    for key in PURPOSES:
        store.put_purpose(tenant.id, Purpose(key=key, kind=Kind.PROCESSING, title={"en": key}))
    store.add_policy(tenant.id, PolicyVersion("2026-01", effective_at=BASE))
    rng = random.Random(42)
    subjects = events // per_subject
    span = timedelta(days=90).total_seconds()
    with Meter() as meter:
        for n in range(subjects):
            at = BASE + timedelta(seconds=rng.uniform(0, span))
            drafts = []
            for i in range(per_subject):
                at += timedelta(seconds=rng.uniform(1, 3600))
                stamp = format_ts(at)
                drafts.append({
                    "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    "tenant_id": tenant.id, "purpose": PURPOSES[(n + i) % len(PURPOSES)],
                    "action": ("grant", "deny", "withdraw", "prompt")[rng.randrange(4)],
                    "policy_version": "2026-01", "occurred_at": stamp, "recorded_at": stamp,
                    "source": {"channel": "ios", "collection_point": "settings", "ui_text_sha256": None,
                               "sdk_version": "3.2.1"},
                    "locale": "zh-CN", "separate": False,
                    "actor": {"type": "self", "id": None, "reason": None}, "age_band": "adult",
                    "os_permission": None,
                    "evidence": {"ip_prefix": "203.0.113.0/24", "user_agent_sha256": "ab" * 32},
                    "idempotency_key": None,
                })
            store.append(tenant.id, f"user-{n:07d}", lambda record, d=drafts: d)
            meter.events += len(drafts)
    meter.bytes = os.path.getsize(db)
    meter.note = tenant.id
    meter.report()


def phase_baseline(db: str, tenant_id: str, out: str) -> None:
    import sqlite3

    conn = sqlite3.connect(db)
    with Meter() as meter, _sink(out) as sink:
        cursor = conn.execute("SELECT doc FROM events WHERE tenant_id = ? "
                              "ORDER BY recorded_at, seq, event_id", (tenant_id,))
        while rows := cursor.fetchmany(1000):
            chunk = "".join(doc + "\n" for (doc,) in rows).encode("utf-8")
            sink.write(chunk)
            meter.events += len(rows)
            meter.bytes += len(chunk)
    meter.report()


def _deps(db: str):
    from consent_api.domain.clock import system_clock
    from consent_api.security.signing_keys import KeyRing
    from consent_api.services.deps import Deps
    from consent_api.store.sqlite import SQLiteStore

    store = SQLiteStore(db)
    return Deps(store=store, clock=system_clock, keys=KeyRing(store, system_clock))


def phase_http(db: str, tenant_id: str, out: str, fmt: str, until: str | None) -> None:
    """GET /v1/audit/events through the Flask app, reading the streamed body chunk by chunk."""
    from consent_api.config import Settings
    from consent_api.services import tenants
    from consent_api.web.app import create_app

    app = create_app(Settings(database_url=f"sqlite:///{db}"))
    key = tenants.issue_key(app.extensions["consent_api.deps"], tenant_id, name="auditor", type="secret",
                            scopes=["audit:read"]).secret
    client = app.test_client()
    query = {"format": fmt, **({"until": until} if until else {})}
    with Meter() as meter, _sink(out) as sink:
        response = client.get("/v1/audit/events", query_string=query,
                              headers={"Authorization": f"Bearer {key}"}, buffered=False)
        assert response.status_code == 200, response.status_code
        for chunk in response.response:
            sink.write(chunk)
            meter.bytes += len(chunk)
            meter.events += chunk.count(b"\n")
        response.close()
    meter.events -= fmt == "csv"  # the header
    meter.report()


def phase_cli_export(db: str, tenant_id: str, out: str) -> None:
    # Loaded before measuring, as in a CLI process that has started.
    from consent_api import cli, verify
    from consent_api.security import signing_keys
    from consent_api.services import audit
    from consent_api.store import sqlite

    del verify, signing_keys, audit, sqlite
    os.environ["CONSENT_DATABASE_URL"] = f"sqlite:///{db}"
    with Meter() as meter:
        code = cli.main(["export", "--out", out, "--tenant", tenant_id])
    assert code == 0
    meter.bytes = os.path.getsize(out)
    meter.events = sum(1 for _ in open(out, "rb"))
    meter.note = f"manifest {os.path.getsize(out + '.manifest.jws') / 1e6:.1f} MB"
    meter.report()


def phase_verify(export: str) -> None:
    from consent_api.verify import verify_files

    with Meter() as meter:
        verdict = verify_files(export, export + ".manifest.jws", export + ".jwks.json")
    meter.events, meter.bytes, meter.note = verdict.events, os.path.getsize(export), str(verdict)
    meter.report()


PHASES = {"seed": phase_seed, "baseline": phase_baseline, "http": phase_http,
          "cli_export": phase_cli_export, "verify": phase_verify}


# --- the driver -------------------------------------------------------------------------------------

def run_phase(name: str, *args) -> dict:
    result = subprocess.run([sys.executable, __file__, "--phase", name, *map(str, args)],
                            capture_output=True, text=True, cwd=ROOT)
    if result.returncode != 0:
        sys.exit(f"phase {name} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def seeded(db: str, events: int) -> str | None:
    """The bench tenant of a database seeded by an earlier run with --dir, if it has the size asked."""
    import sqlite3

    if not Path(db).exists():
        return None
    conn = sqlite3.connect(db)
    try:
        (count,) = conn.execute("SELECT COUNT(*) FROM events").fetchone()
        row = conn.execute("SELECT id FROM tenants").fetchone()
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    return row[0] if row and count == events else None


def warm_page_cache(db: str) -> None:
    """Read the file once, so the baseline does not pay for a cold cache that later phases skip."""
    with open(db, "rb", buffering=0) as fh:
        while fh.read(8 << 20):
            pass


def tenth_until(db: str, events: int) -> str:
    """The recorded_at before which a tenth of the events lie."""
    import sqlite3

    row = sqlite3.connect(db).execute("SELECT recorded_at FROM events ORDER BY recorded_at "
                                      "LIMIT 1 OFFSET ?", (events // 10,)).fetchone()
    return row[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--per-subject", type=int, default=20, help="events per subject (default 20)")
    parser.add_argument("--dir", help="work directory, kept afterwards; a database seeded there by an "
                                      "earlier run of the same size is reused (default: a temporary one)")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args(argv)
    if args.phase:
        PHASES[args.phase](*_typed(args.phase, rest))
        return 0

    work = Path(args.dir or tempfile.mkdtemp(prefix="export-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    db, null = str(work / "bench.db"), os.devnull
    started = time.perf_counter()
    try:
        tenant_id = seeded(db, args.events)
        if tenant_id:
            print(f"reusing the {args.events:,} events already seeded in {db}", flush=True)
        else:
            print(f"seeding {args.events:,} events ({args.per_subject} per subject) into {db} ...", flush=True)
            Path(db).unlink(missing_ok=True)
            seed = run_phase("seed", db, args.events, args.per_subject)
            tenant_id = seed["note"]
            print(f"  {seed['events']:,} events in {seed['seconds']:.0f} s ({seed['events'] / seed['seconds']:,.0f} "
                  f"events/s), file {seed['bytes'] / 1e6:,.0f} MB", flush=True)
        warm_page_cache(db)
        rows = [
            ("baseline: raw SELECT doc, export order", run_phase("baseline", db, tenant_id, null)),
            ("GET /v1/audit/events, first 10% (until)",
             run_phase("http", db, tenant_id, null, "ndjson", tenth_until(db, args.events))),
            ("GET /v1/audit/events (NDJSON)", run_phase("http", db, tenant_id, null, "ndjson", "")),
            ("GET /v1/audit/events?format=csv", run_phase("http", db, tenant_id, null, "csv", "")),
            ("consent-api export (file + manifest)",
             run_phase("cli_export", db, tenant_id, str(work / "events.ndjson"))),
            ("consent-api verify-export", run_phase("verify", str(work / "events.ndjson"))),
        ]
        print_table(rows)
        verdict = rows[-1][1]["note"]
        print(f"\nverify-export: {verdict}")
        print(f"total {time.perf_counter() - started:.0f} s")
        return 0 if verdict.startswith("OK:") else 1
    finally:
        if not args.dir:
            shutil.rmtree(work, ignore_errors=True)


def _typed(phase: str, rest: list[str]) -> list:
    if phase == "seed":
        return [rest[0], int(rest[1]), int(rest[2])]
    if phase == "http":
        return [rest[0], rest[1], rest[2], rest[3], rest[4] or None]
    return rest


def print_table(rows: list[tuple[str, dict]]) -> None:
    """Wall time and CPU time (user + system of the phase's process); on a shared machine the CPU
    ratios are the steadier ones."""
    base, base_cpu = rows[0][1]["seconds"], rows[0][1]["cpu"]
    print(f"\n{'phase':<40} {'events':>10} {'wall s':>7} {'cpu s':>6} {'events/s':>9} {'MB/s':>6} "
          f"{'x base':>7} {'x base cpu':>10} {'RSS growth':>11}")
    for label, r in rows:
        secs, cpu = max(r["seconds"], 1e-9), max(r["cpu"], 1e-9)
        print(f"{label:<40} {r['events']:>10,} {secs:>7.1f} {cpu:>6.1f} {r['events'] / secs:>9,.0f} "
              f"{r['bytes'] / 1e6 / secs:>6.1f} {secs / base:>6.2f}x {cpu / base_cpu:>9.2f}x "
              f"{r['growth_kb'] / 1024:>8.1f} MB")
    notes = [f"  {label}: {r['note']}" for label, r in rows if r["note"] and "verify" not in label]
    if notes:
        print("\n".join(notes))


if __name__ == "__main__":
    sys.exit(main())
