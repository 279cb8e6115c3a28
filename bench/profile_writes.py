"""python -m bench.profile_writes: a flame graph of durable decision writes under load.

Seeds (or copies the cached seed of) a population, starts `consent-api serve` on it, drives the
bench's write scenario with wrk and records every process of the server with py-spy (`pip install
py-spy`) for the duration: one SVG per process in --out (default bench/results/), the worker's
is the one to read.
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from bench import loadgen, run, scenarios
from tests.support import servers

SUFFIX = {"flamegraph": "svg", "raw": "txt", "speedscope": "json"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.profile_writes", description=__doc__.split("\n\n")[0])
    p.add_argument("--size", default="10k")
    p.add_argument("--seconds", type=int, default=20)
    p.add_argument("--scenario", default="write", choices=sorted(scenarios.SCENARIOS))
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    p.add_argument("--out", default=str(run.RESULTS))
    p.add_argument("--name", default="write-flame")
    p.add_argument("--format", default="flamegraph", choices=["flamegraph", "raw", "speedscope"],
                   help="py-spy's output: an SVG, collapsed stacks (text) or speedscope JSON")
    p.add_argument("--gil", action="store_true", help="only samples of the thread holding the GIL (Python's CPU)")
    args = p.parse_args(argv)
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    n = run.parse_size(args.size)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="consent-profile-") as tmp:
        workdir = Path(tmp)
        db = workdir / "consent.db"
        pop, _ = run._seeded(run.build_parser().parse_args([]), n, db)
        app = servers.serve(workdir, workers=args.workers, threads=args.threads, database_url=f"sqlite:///{db}")
        try:
            req = loadgen.write_requests(workdir / "load.req",
                                         scenarios.SCENARIOS[args.scenario].build(pop, random.Random(n)))
            loadgen.run(app.url, req, seconds=2, connections=8, token=pop.admin_key)
            workers = [pid for pid in app.pids() if pid != app.process.pid]
            spies = [subprocess.Popen([py_spy, "record", "--nonblocking", "-r", str(args.rate), "-d",
                                       str(args.seconds), "-f", args.format, *(["--gil"] if args.gil else []),
                                       "-o", str(out / f"{args.name}-{i}.{SUFFIX[args.format]}"),
                                       "--pid", str(pid)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
                     for i, pid in enumerate(workers)]
            result: list[loadgen.Load] = []
            load = threading.Thread(target=lambda: result.append(loadgen.run(
                app.url, req, seconds=args.seconds, connections=8, token=pop.admin_key)))
            load.start()
            load.join()
            for spy in spies:
                spy.wait(timeout=args.seconds + 60)
            print(f"{args.scenario}: {result[0].rps:,.0f} req/s, p99 {result[0].p99_ms:.1f} ms while recorded; "
                  f"profiles in {out}/{args.name}-*.{SUFFIX[args.format]}")
        finally:
            app.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
