"""python -m bench: consent_api against a bare Flask app under the same server, one table.

Per population size: seed (or copy a cached seed), start `consent-api serve`, and measure each
scenario with wrk after a short warm-up; the bare app is measured right before and after the two
hot reads, and every req/s is printed as a ratio to the mean of those two bare figures.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

from bench import loadgen, peer_fides, scenarios, seed
from tests.support import servers

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
SEED_VERSION = 5  # bump when bench/seed.py or the schema changes what a seeded file holds
ORDER = ("check", "state", "history", "audience", "bulk_check", "write", "mixed")
PAIRED = ("check", "state")  # the rows with a ratio target: measured in alternation with bare Flask


def parse_size(text: str) -> int:
    text = text.strip().lower()
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text.rstrip("km")) * scale)


def label(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}k" if n % 1000 == 0 else str(n)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="10k,100k,1m", help="subject counts, e.g. 10k,100k (default 10k,100k,1m)")
    p.add_argument("--duration", type=float, default=10, help="seconds per measurement (default 10)")
    p.add_argument("--warmup", type=float, default=2, help="seconds of warm-up per scenario (default 2)")
    p.add_argument("--pairs", type=int, default=4,
                   help="check and state alternate with bare Flask in this many slices (default 4)")
    p.add_argument("--connections", type=int, default=8, help="wrk connections (default 8)")
    p.add_argument("--workers", type=int, default=2, help="server worker processes, both apps (default 2)")
    p.add_argument("--threads", type=int, default=8, help="blocking threads per worker, both apps (default 8)")
    p.add_argument("--scenarios", default=",".join(ORDER), help=f"subset of {','.join(ORDER)}")
    p.add_argument("--export-seconds", type=float, default=30, help="bound on the audit export (default 30)")
    p.add_argument("--workdir", default=None, help="where databases and logs go (default: a temp dir)")
    p.add_argument("--seed-cache", default=str(RESULTS / "seed-cache"),
                   help="keep seeded databases here and copy them on later runs ('' to disable)")
    p.add_argument("--out", default=str(RESULTS), help="directory for the JSON result")
    p.add_argument("--peer", choices=("fides",), default=None,
                   help="also measure Ethyca Fides (installed by the peer's setup.sh) and print our rates "
                        "and memory as multiples of its own")
    p.add_argument("--peer-scripts", default=None,
                   help="the peer's scripts (env.sh, setup.sh, stop.sh, bench.lua); default ../shared/peers/fides")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    loadgen.require_wrk()
    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    wanted = [s for s in args.scenarios.split(",") if s]
    unknown = set(wanted) - set(ORDER)
    if unknown:
        raise SystemExit(f"unknown scenarios: {', '.join(sorted(unknown))}")
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="consent-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    result = {
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        "git": _git_rev(), "cpus": os.cpu_count(), "load_before": os.getloadavg()[0],
        "server": {"name": "granian (RSGI front, WSGI app)", "workers": args.workers, "blocking_threads": args.threads},
        "wrk": {"connections": args.connections, "threads": min(2, args.connections),
                "duration_s": args.duration, "pairs": args.pairs},
        "tiers": [],
    }
    bare_req = loadgen.write_requests(workdir / "bare.req", [("GET", "/", "")])
    port = servers.free_port()
    print(f"bench: workdir {workdir}; bare Flask and consent_api under granian (RSGI front, WSGI app), "
          f"{args.workers} workers x {args.threads} threads, wrk -c{args.connections}", file=sys.stderr)
    bare = servers.start("bare Flask", ["-m", "bench.bare_app", str(port), str(args.workers), str(args.threads)],
                         workdir, port=port, workers=args.workers, ready_path="/", log_name="bare.log")
    try:
        for n in sizes:
            result["tiers"].append(run_tier(args, n, wanted, workdir, bare, bare_req))
    finally:
        bare.stop()
    if args.peer == "fides":
        scripts = Path(args.peer_scripts) if args.peer_scripts else peer_fides.default_scripts()
        if scripts is None:
            raise SystemExit("--peer fides: the peer's scripts are not in ../shared/peers/fides; give --peer-scripts")
        peer = peer_fides.open_peer(scripts)
        try:
            result["peer"] = {"name": "fides", **peer_fides.measure(peer, args)}
        finally:
            peer_fides.close_peer(peer)
    result["seconds"] = round(time.time() - started, 1)
    result["load_after"] = os.getloadavg()[0]
    result["targets"] = targets(result)
    print_table(result)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"bench-{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwritten to {path} ({result['seconds']:.0f} s in all)")
    if not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def measure(server_url: str, req_file: Path, args, connections: int | None = None,
            token: str | None = None, script: Path = loadgen.SCRIPT) -> loadgen.Load:
    c = connections or args.connections
    if args.warmup:
        loadgen.run(server_url, req_file, seconds=args.warmup, connections=c, token=token, script=script)
    return loadgen.run(server_url, req_file, seconds=args.duration, connections=c, token=token, script=script)


def measure_paired(url: str, req: Path, bare_url: str, bare_req: Path, args, token: str,
                   bares: list[loadgen.Load]) -> tuple[loadgen.Load, float]:
    """The two hot reads, against bare Flask slice by slice: --pairs times (bare, then ours) of
    duration/pairs seconds each. The ratio is the median of the slices' ratios, so a neighbour's
    load that comes and goes on a shared machine moves both sides of a pair alike."""
    c, slice_s = args.connections, max(1, round(args.duration / args.pairs))  # wrk takes whole seconds
    if args.warmup:
        loadgen.run(bare_url, bare_req, seconds=args.warmup, connections=c)
        loadgen.run(url, req, seconds=args.warmup, connections=c, token=token)
    ours, ratios = [], []
    for _ in range(args.pairs):
        b = loadgen.run(bare_url, bare_req, seconds=slice_s, connections=c)
        a = loadgen.run(url, req, seconds=slice_s, connections=c, token=token)
        bares.append(b)
        ours.append(a)
        ratios.append(a.rps / b.rps)
    seconds = sum(a.seconds for a in ours)
    merged = loadgen.Load(
        requests=sum(a.requests for a in ours), seconds=round(seconds, 2),
        rps=round(sum(a.requests for a in ours) / seconds, 1),
        p50_ms=statistics.median(a.p50_ms for a in ours), p90_ms=max(a.p90_ms for a in ours),
        p99_ms=max(a.p99_ms for a in ours), max_ms=max(a.max_ms for a in ours),
        errors=sum(a.errors for a in ours), bytes=sum(a.bytes for a in ours))
    return merged, statistics.median(ratios)


def run_tier(args, n: int, wanted: list[str], workdir: Path, bare: servers.Server, bare_req: Path) -> dict:
    tier = {"subjects": n, "label": label(n), "rows": {}}
    t0 = time.time()
    db = workdir / f"consent-{label(n)}.db"
    pop, tier["seed"] = _seeded(args, n, db)
    tier["seed_s"] = round(time.time() - t0, 1)
    tier["db_mib"] = round(db.stat().st_size / 2**20)
    print(f"[{label(n)}] {pop.subjects:,} subjects, {pop.events:,} events ({tier['seed']}, "
          f"{tier['seed_s']:.0f} s, {tier['db_mib']:,} MiB)", file=sys.stderr)
    app = servers.serve(workdir, workers=args.workers, threads=args.threads, database_url=f"sqlite:///{db}",
                        log_name=f"consent-{label(n)}.log")
    rng = random.Random(n)
    bares: list[loadgen.Load] = []
    paired: dict[str, float] = {}
    try:
        for name in ORDER:
            if name not in wanted:
                continue
            sc = scenarios.SCENARIOS[name]
            req = loadgen.write_requests(workdir / f"{name}-{label(n)}.req", sc.build(pop, rng))
            memory = {}
            if name in PAIRED:
                load, paired[name] = measure_paired(app.url, req, bare.url, bare_req, args, pop.admin_key, bares)
            else:
                with scenarios.peak_pss(app.pids) as memory:  # the whole server: main process and workers
                    load = measure(app.url, req, args, sc.connections, pop.admin_key, sc.script)
            tier["rows"][name] = {"label": sc.label, "connections": sc.connections or args.connections,
                                  **load.to_dict(), "pss_mib": memory.get("peak_mib"),
                                  "pss_anon_mib": memory.get("anon_mib")}
            _log(n, sc.label, load)
        if not bares:
            bares.append(measure(bare.url, bare_req, args))
        tier["bare"] = [b.to_dict() for b in bares]
        bare_rps = sum(b.rps for b in bares) / len(bares)
        tier["bare_rps"] = round(bare_rps, 1)
        for name, row in tier["rows"].items():
            row["ratio"] = round(paired.get(name, row["rps"] / bare_rps), 3)
        ex = scenarios.export(app.url, pop.admin_key, app.memory_kib, args.export_seconds)
        if ex.status == 404:
            tier["export"] = {"skipped": "GET /v1/audit/events is not on this branch (404)"}
        else:
            tier["export"] = {**asdict(ex), "events_per_s": round(ex.events_per_s),
                              "mib_per_s": round(ex.mib_per_s, 1)}
        print(f"[{label(n)}] export: {tier['export']}", file=sys.stderr)
    finally:
        app.stop()
    db.unlink(missing_ok=True)
    for suffix in ("-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    return tier


def _seeded(args, n: int, db: Path) -> tuple[seed.Population, str]:
    """Copy a cached seed of this size when there is one; otherwise seed (and cache) it."""
    cache = Path(args.seed_cache) / f"seed-v{SEED_VERSION}-{label(n)}.db" if args.seed_cache else None
    meta = cache.with_suffix(".json") if cache else None
    for path in (db, Path(str(db) + "-wal"), Path(str(db) + "-shm")):
        path.unlink(missing_ok=True)  # a stale WAL next to a copied file would corrupt it
    if cache and cache.exists() and meta.exists():
        shutil.copyfile(cache, db)
        return seed.Population(**json.loads(meta.read_text())), "cached seed"
    pop = seed.seed(str(db), n)
    if cache:
        cache.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(db, cache)
        meta.write_text(json.dumps(asdict(pop)))
    return pop, "seeded"


def _log(n: int, what: str, load: loadgen.Load) -> None:
    print(f"[{label(n)}] {what}: {load.rps:,.0f} req/s, p50 {load.p50_ms:.2f} ms, "
          f"p99 {load.p99_ms:.2f} ms, errors {load.errors}", file=sys.stderr)
    for method, m in (load.by_method or {}).items():
        print(f"[{label(n)}]   {method}: {m['rps']:,.0f} req/s, p50 {m['p50_ms']:.2f} ms, "
              f"p99 {m['p99_ms']:.2f} ms, non-2xx {m['non2xx']}", file=sys.stderr)


def _git_rev() -> str | None:
    try:
        return subprocess.run(["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10).stdout.strip() or None
    except OSError:
        return None


def print_table(result: dict) -> None:
    print(f"\nconsent_api vs bare Flask, both under {result['server']['name']} "
          f"{result['server']['workers']} workers x {result['server']['blocking_threads']} threads; "
          f"wrk -c{result['wrk']['connections']} {result['wrk']['duration_s']:g} s per row; "
          f"{result['cpus']} CPUs, load {result['load_before']:.1f} at start; check and state: "
          f"median ratio of {result['wrk'].get('pairs', 1)} slices alternating with bare Flask")
    header = f"{'subjects':>8}  {'scenario':<27} {'conns':>5} {'req/s':>8} {'x bare':>6} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6}"
    print(header)
    print("-" * len(header))
    for tier in result["tiers"]:
        lab = tier["label"]
        print(f"{lab:>8}  {'bare Flask GET / (mean)':<27} {result['wrk']['connections']:>5} "
              f"{tier['bare_rps']:>8,.0f} {1:>6.2f} "
              f"{_mean(tier['bare'], 'p50_ms'):>7.2f} {_mean(tier['bare'], 'p99_ms'):>7.2f} "
              f"{sum(b['errors'] for b in tier['bare']):>6}")
        for row in tier["rows"].values():
            print(f"{lab:>8}  {row['label']:<27} {row['connections']:>5} {row['rps']:>8,.0f} "
                  f"{row['ratio']:>6.2f} {row['p50_ms']:>7.2f} {row['p99_ms']:>7.2f} {row['errors']:>6}")
            for method, what in (("GET", "of which checks"), ("POST", "of which writes")):
                m = (row.get("by_method") or {}).get(method)
                if m:
                    print(f"{lab:>8}    {what:<25} {'':>5} {m['rps']:>8,.0f} {m['rps'] / tier['bare_rps']:>6.2f} "
                          f"{m['p50_ms']:>7.2f} {m['p99_ms']:>7.2f} {m['non2xx']:>6}")
            if row.get("by_method") and row.get("pss_mib"):
                print(f"{lab:>8}    {'whole-server PSS':<25} {row['pss_mib']:>14} MiB (peak, all processes; "
                      f"{row['pss_anon_mib']} MiB of it anonymous, the rest mapped files)")
        ex = tier.get("export", {})
        if "skipped" in ex:
            print(f"{lab:>8}  {'audit export':<27} skipped: {ex['skipped']}")
        elif ex:
            print(f"{lab:>8}  {'audit export (NDJSON)':<27} {1:>5} {ex['events_per_s']:>8,} events/s, "
                  f"{ex['mib_per_s']} MiB/s, {ex['events']:,} events{'' if ex['complete'] else ' (time-bounded)'}, "
                  f"peak RSS growth {ex['rss_growth_mib']} MiB (anonymous {ex['anon_growth_mib']} MiB)")
    flat = _flatness(result["tiers"])
    if flat:
        print("\nlargest vs smallest population: " + "; ".join(flat))
    print("\nnoise: bare Flask's own spread: " + "; ".join(f"{t['label']} {_noise(t)}" for t in result["tiers"])
          + f"; load average {result['load_before']:.1f} at start, {result['load_after']:.1f} at the end")
    peer = result.get("peer")
    if peer:
        print(f"\nFides {peer['version']} (PostgreSQL, Redis), same wrk and connections, "
              f"{peer['processes']} processes, peak PSS {peer['pss_mib']} MiB")
        for row in peer["rows"].values():
            print(f"{'':>8}  {row['label']:<38} {row['connections']:>5} {row['rps']:>8,.0f} req/s "
                  f"p50 {row['p50_ms']:.1f} ms p99 {row['p99_ms']:.1f} ms errors {row['errors']}")
    if result.get("targets"):
        print("\ntargets")
        for t in result["targets"]:
            print(f"  {t['verdict']:<12} {t['target']}: {t['measured']}")


# Performance targets: (write rate, its p99), export rate and memory growth at 1M events, check
# p99 under the mixed load, whole-server PSS, and multiples of the peer's rates and memory.
WRITE_RPS, WRITE_P99_MS = 1_500, 25
EXPORT_EVENTS_PER_S, EXPORT_GROWTH_MIB, EXPORT_AT = 150_000, 64, 1_000_000
MIXED_CHECK_P99_MS = 10
PSS_MIB = 100
PEER_WRITES, PEER_READS, PEER_MEMORY = 10, 30, 1 / 5


def targets(result: dict) -> list[dict]:
    """Each target with the figure this run measured and PASS or MISS (or "not measured")."""
    out: list[dict] = []

    def add(what: str, figure: str, ok: bool | None) -> None:
        out.append({"target": what, "measured": figure,
                    "verdict": "not measured" if ok is None else "PASS" if ok else "MISS"})

    tiers = result["tiers"]
    for tier in tiers:
        row = tier["rows"].get("write")
        if row:
            add(f"durable writes >= {WRITE_RPS:,}/s, p99 < {WRITE_P99_MS} ms ({tier['label']})",
                f"{row['rps']:,.0f}/s, p99 {row['p99_ms']:.1f} ms",
                row["rps"] >= WRITE_RPS and row["p99_ms"] < WRITE_P99_MS and row["errors"] == 0)
    big = [t for t in tiers if t["subjects"] >= EXPORT_AT and "events_per_s" in t.get("export", {})]
    if big:
        ex = big[-1]["export"]
        # The process's own memory: RSS also counts the database pages SQLite maps, page cache.
        add(f"export >= {EXPORT_EVENTS_PER_S // 1000}k events/s at {EXPORT_AT // 1_000_000}M, "
            f"anonymous memory growth < {EXPORT_GROWTH_MIB} MiB",
            f"{ex['events_per_s']:,}/s over {ex['events']:,} events, growth {ex['anon_growth_mib']} MiB "
            f"(RSS {ex['rss_growth_mib']} MiB with the mapped file) ({big[-1]['label']})",
            ex["events_per_s"] >= EXPORT_EVENTS_PER_S and ex["anon_growth_mib"] < EXPORT_GROWTH_MIB)
    else:
        add(f"export >= {EXPORT_EVENTS_PER_S // 1000}k events/s at {EXPORT_AT // 1_000_000}M", "no 1M tier", None)
    pss = []
    for tier in tiers:
        row = tier["rows"].get("mixed")
        if row and row.get("by_method"):
            check, write = row["by_method"].get("GET", {}), row["by_method"].get("POST", {})
            add(f"mixed load: check p99 < {MIXED_CHECK_P99_MS} ms while writes flow ({tier['label']})",
                f"check p99 {check.get('p99_ms', 0):.1f} ms at {check.get('rps', 0):,.0f}/s, "
                f"writes {write.get('rps', 0):,.0f}/s (p99 {write.get('p99_ms', 0):.1f} ms)",
                bool(check.get("count")) and bool(write.get("count")) and row["errors"] == 0
                and check["p99_ms"] < MIXED_CHECK_P99_MS)
            add(f"whole-server PSS under the mixed load <= {PSS_MIB} MiB ({tier['label']})",
                f"{row['pss_mib']} MiB, {row['pss_anon_mib']} MiB of it anonymous, the rest mapped files "
                "(the database, the libraries)",
                row["pss_mib"] <= PSS_MIB)
            pss.append(row["pss_mib"])
    peer = result.get("peer")
    if peer:
        reads = max(peer["rows"]["read_by_id"]["rps"], peer["rows"]["read_by_email"]["rps"])
        ours_w = [t["rows"]["write"]["rps"] for t in tiers if "write" in t["rows"]]
        ours_r = [t["rows"]["check"]["rps"] for t in tiers if "check" in t["rows"]]
        if ours_w:
            ratio = min(ours_w) / peer["rows"]["write"]["rps"]
            add(f"writes >= {PEER_WRITES}x Fides's", f"{ratio:.1f}x ({min(ours_w):,.0f} vs "
                f"{peer['rows']['write']['rps']:,.0f}/s)", ratio >= PEER_WRITES)
        if ours_r:
            ratio = min(ours_r) / reads
            add(f"reads >= {PEER_READS}x Fides's (its faster read)", f"{ratio:.1f}x ({min(ours_r):,.0f} vs "
                f"{reads:,.0f}/s)", ratio >= PEER_READS)
        if pss:
            ratio = max(pss) / peer["pss_mib"]
            add("memory <= 1/5 of Fides with PostgreSQL and Redis", f"{ratio:.2f} ({max(pss)} vs "
                f"{peer['pss_mib']} MiB PSS, our largest population)", ratio <= PEER_MEMORY)
    return out


def _noise(tier: dict) -> str:
    """Bare Flask's own spread in this tier: how far its slices lie from their mean."""
    rates = [b["rps"] for b in tier["bare"]]
    mean = sum(rates) / len(rates)
    return f"{min(rates):,.0f}-{max(rates):,.0f} req/s over {len(rates)} runs ({(max(rates) - min(rates)) / mean:.0%} of the mean)"


def _mean(rows: list[dict], key: str) -> float:
    return sum(r[key] for r in rows) / len(rows)


def _flatness(tiers: list[dict]) -> list[str]:
    if len(tiers) < 2:
        return []
    small, big = tiers[0], tiers[-1]
    out = []
    for name in ("check", "state"):
        a, b = small["rows"].get(name), big["rows"].get(name)
        if a and b:
            out.append(f"{name} {b['ratio'] / a['ratio']:.2f}x the ratio, p99 {b['p99_ms']:.2f} vs {a['p99_ms']:.2f} ms "
                       f"({big['label']} vs {small['label']})")
    return out
