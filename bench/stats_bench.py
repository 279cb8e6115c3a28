"""GET /v1/stats and the write path it costs, on one SQLite file:

    python bench/stats_bench.py                          # 1,000,000 events, 20 purposes, a year
    python bench/stats_bench.py --events 30000 --slice 1  # a quick smoke run

1. Seeds a tenant with 20 purposes (every fourth with a 180-day validity) and ~3 decisions per
   subject spread over 300 days (bench/seed.py through bench/bulk.py, which loads the per-day
   counters with the events), unless the file from an earlier run is there.
2. Times GET /v1/stats for 365 days x 20 purposes through the app (Flask test client, so the
   answer is built and serialised as a client gets it) and the service call alone: median and
   p95 of --repeat answers. For contrast, one recount of the same counters from the ledger
   (the one-pass scan schema version 5 runs), which is what a request would cost without them.
3. The write-path ratio: durable decision writes (services.consents.record, 2 decisions each,
   group commit, fsync before answering) from --threads threads into the same file, in
   alternating slices with the counters on and off (off: nothing is counted or upserted):
   the medians of writes/s and of the process's CPU time per write, and their ratios. On a
   shared, loaded machine throughput slices vary a lot; CPU per write is the steadier figure.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import threading
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import seed  # noqa: E402
from consent_api.config import Settings  # noqa: E402
from consent_api.domain import daily  # noqa: E402
from consent_api.domain.clock import system_clock  # noqa: E402
from consent_api.security.signing_keys import KeyRing  # noqa: E402
from consent_api.services import consents, stats  # noqa: E402
from consent_api.services.deps import Deps  # noqa: E402
from consent_api.store.sqlite import SQLiteStore, batch  # noqa: E402
from consent_api.store.sqlite import daily as daily_rows  # noqa: E402
from consent_api.web.app import create_app  # noqa: E402

PURPOSE_COUNT = 20
KINDS = ("processing", "marketing", "cookie", "third_party", "device_permission")


def catalog() -> dict[str, dict]:
    out = {}
    for i in range(PURPOSE_COUNT):
        body = {"kind": KINDS[i % len(KINDS)], "title": {"en": f"Purpose {i}", "zh-CN": f"目的 {i}"}}
        if i % 4 == 3:
            body["validity_days"] = 180
        out[f"purpose_{i:02d}"] = body
    return out


def seeded(path: Path, events: int) -> tuple[str, str]:
    """(tenant_id, admin key) of the seeded file; seeds it when absent."""
    meta = path.with_suffix(".json")
    if path.exists() and meta.exists():
        known = json.loads(meta.read_text())
        if known["events"] >= events * 0.99:
            print(f"seed: reusing {path} ({known['events']:,} events)")
            return known["tenant_id"], known["admin_key"]
    for stale in path.parent.glob(path.name + "*"):
        stale.unlink()
    started = time.perf_counter()
    pop = seed.seed(str(path), events // seed.EVENTS_PER_SUBJECT, purposes=catalog())
    print(f"seed: {pop.events:,} events, {pop.subjects:,} subjects, {PURPOSE_COUNT} purposes "
          f"in {time.perf_counter() - started:.0f} s")
    meta.write_text(json.dumps({"events": pop.events, "tenant_id": pop.tenant_id, "admin_key": pop.admin_key}))
    return pop.tenant_id, pop.admin_key


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def time_stats(path: Path, tenant_id: str, admin_key: str, repeat: int) -> dict:
    since = seed.START.astimezone(daily.ZONE).date()
    until = since + timedelta(days=365)
    clock = lambda: datetime(2026, 11, 1, tzinfo=timezone.utc)  # noqa: E731 - after the seeded year
    app = create_app(Settings(database_url=f"sqlite:///{path}", rate_limit="off", log_level="WARNING"), clock=clock)
    client = app.test_client()
    query = {"since": since.isoformat(), "until": until.isoformat()}
    headers = {"Authorization": f"Bearer {admin_key}"}
    http, service, rows = [], [], 0
    deps = app.extensions["consent_api.deps"]
    for _ in range(repeat):
        t0 = time.perf_counter()
        response = client.get("/v1/stats", query_string=query, headers=headers)
        http.append(time.perf_counter() - t0)
        assert response.status_code == 200, response.get_data(as_text=True)
        rows = len(response.get_json()["days"])
        t0 = time.perf_counter()
        stats.stats(deps, tenant_id, since, until, None)
        service.append(time.perf_counter() - t0)
    deps.store.close()
    return {"rows": rows, "http_ms": [statistics.median(http) * 1000, percentile(http, 0.95) * 1000],
            "service_ms": [statistics.median(service) * 1000, percentile(service, 0.95) * 1000]}


def time_recount(path: Path) -> float:
    store = SQLiteStore(str(path))
    try:
        conn = store._conn()
        t0 = time.perf_counter()
        conn.execute("BEGIN")
        try:
            daily_rows.fill(conn)  # the one-pass recount of schema version 5, then thrown away
        finally:
            conn.execute("ROLLBACK")
        return time.perf_counter() - t0
    finally:
        store.close()


def write_slices(path: Path, tenant_id: str, threads: int, seconds: float, rounds: int) -> dict:
    """Writes/s with the counters on and off, in alternating slices of the same run."""
    store = SQLiteStore(str(path))
    deps = Deps(store, system_clock, KeyRing(store, system_clock))
    keys = list(catalog())
    counting = batch.daily.tally
    results: dict[str, list[float]] = {"on": [], "off": []}
    cpu: dict[str, list[float]] = {"on": [], "off": []}  # process CPU seconds per write
    serial = iter(range(10**9))

    def writer(stop: float, done: list[int]) -> None:
        rng = random.Random()
        n = 0
        while time.perf_counter() < stop:
            picked = rng.sample(keys, 2)
            sub = consents.Submission([consents.Decision(picked[0], True), consents.Decision(picked[1], False)],
                                      seed.POLICY, {"channel": "ios"}, "zh-CN")
            consents.record(deps, tenant_id, f"w{next(serial):09d}", sub)
            n += 1
        done.append(n)

    try:
        for _ in range(rounds):
            for mode in ("on", "off"):
                batch.daily.tally = counting if mode == "on" else (lambda *args, **kw: {})  # type: ignore[assignment]
                done: list[int] = []
                stop = time.perf_counter() + seconds
                workers = [threading.Thread(target=writer, args=(stop, done)) for _ in range(threads)]
                t0, c0 = time.perf_counter(), time.process_time()
                for w in workers:
                    w.start()
                for w in workers:
                    w.join()
                results[mode].append(sum(done) / (time.perf_counter() - t0))
                cpu[mode].append((time.process_time() - c0) / max(sum(done), 1))
    finally:
        batch.daily.tally = counting
        store.close()
    on, off = statistics.median(results["on"]), statistics.median(results["off"])
    cpu_on, cpu_off = statistics.median(cpu["on"]), statistics.median(cpu["off"])
    return {"on": on, "off": off, "ratio": on / off, "slices": results,
            "cpu_us": {"on": cpu_on * 1e6, "off": cpu_off * 1e6, "ratio": cpu_on / cpu_off}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--dir", default=str(ROOT / "bench" / "results"))
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--slice", type=float, default=3.0, help="seconds per write slice")
    parser.add_argument("--rounds", type=int, default=8, help="on/off slice pairs")
    args = parser.parse_args()
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"stats-{args.events}.db"
    tenant_id, admin_key = seeded(path, args.events)

    answered = time_stats(path, tenant_id, admin_key, args.repeat)
    print(f"GET /v1/stats, 365 days x {PURPOSE_COUNT} purposes ({answered['rows']:,} rows), {args.repeat} answers: "
          f"median {answered['http_ms'][0]:.1f} ms, p95 {answered['http_ms'][1]:.1f} ms "
          f"(service call alone: median {answered['service_ms'][0]:.1f} ms, p95 {answered['service_ms'][1]:.1f} ms)")
    scan = time_recount(path)
    print(f"contrast: counting the same from the ledger in one pass: {scan:.1f} s "
          f"({scan * 1000 / answered['http_ms'][0]:,.0f}x the answer)")
    written = write_slices(path, tenant_id, args.threads, args.slice, args.rounds)
    print(f"write path ({args.threads} threads, 2 decisions a write, durable): counters on {written['on']:,.0f} "
          f"writes/s, off {written['off']:,.0f} writes/s, ratio on/off {written['ratio']:.2f} "
          f"(slices on {[round(x) for x in written['slices']['on']]}, off {[round(x) for x in written['slices']['off']]}); "
          f"CPU per write on {written['cpu_us']['on']:.0f} us, off {written['cpu_us']['off']:.0f} us, "
          f"ratio {written['cpu_us']['ratio']:.2f}")
    out = folder / f"stats-bench-{date.today().isoformat()}.json"
    out.write_text(json.dumps({"events": args.events, "stats": answered, "recount_s": scan, "writes": written},
                              indent=2))
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
