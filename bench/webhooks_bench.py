"""python -m bench.webhooks_bench: webhooks end to end, against a real `consent-api serve` and its
delivery worker (`consent-api worker`, started by the bench as serve would start it: niced, beside
the API) and a fast receiver on 127.0.0.1 in a process of its own, all in one run:

1. the write path (wrk, durable decision writes) of a tenant with 3 webhooks against one with none,
   the worker stopped (deliveries held): what registering webhooks costs a write itself;
2. end-to-end latency from a write's 201 to each receiver's arrival (p50, p99) at a paced
   100 writes/s with 3 webhooks; the same paced writes to a tenant without webhooks in alternate
   slices, so the write latency a client sees while deliveries flow has a baseline (p50, p99 ratio);
3. deliveries per second to one fast receiver: a backlog of distinct subjects, sent once the
   endpoint is enabled; the worker's CPU per delivery;
4. the write path again, 3 webhooks against none, saturated by wrk while the deliveries flow on
   the same cores (the worker drained between slices): the ratio includes the worker's and the
   receiver's CPU, both printed per slice.

Ratios are medians of alternating pairs (none, three) of the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench import loadgen
from tests.support import servers
from tests.support.api import OPERATOR_TOKEN, Tenant

PURPOSES = ("push", "sms", "location")
WORKER_NICE = "10"  # as serve starts its worker (CONSENT_WORKER_NICE's default)
TICK = os.sysconf("SC_CLK_TCK")


# --- the receiver, in a process of its own ---------------------------------------------------------
def receive() -> None:
    """Answer 204 to every POST at once and note when each message first arrived (CLOCK_MONOTONIC,
    which every process of the machine shares); GET /_count and GET /_arrivals report. Prints
    its port, then serves until its stdin closes."""
    lock = threading.Lock()
    at: dict[str, float] = {}  # "path event_id" -> first arrival
    count = 0

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            nonlocal count
            data = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            now = time.monotonic()
            event = (json.loads(data).get("data") or {}).get("event") or {}
            with lock:
                count += 1
                at.setdefault(f"{self.path} {event.get('event_id', '')}", now)
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            with lock:
                payload = json.dumps(count if self.path == "/_count" else at).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(server.server_address[1], flush=True)
    sys.stdin.read()


class Receiver:
    def __init__(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "bench.webhooks_bench", "--receive"],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        self.url = f"http://127.0.0.1:{int(self.process.stdout.readline())}"

    def _get(self, path: str):
        with urllib.request.urlopen(self.url + path, timeout=30) as response:
            return json.loads(response.read())

    @property
    def count(self) -> int:
        return int(self._get("/_count"))

    def arrivals(self) -> dict[tuple[str, str], float]:
        return {tuple(k.split(" ", 1)): v for k, v in self._get("/_arrivals").items()}  # type: ignore[misc]

    def wait(self, count: int, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.count >= count:
                return True
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(10)


# --- the worker, a process of its own ---------------------------------------------------------------
@contextlib.contextmanager
def worker(server: servers.Server, env: dict[str, str], workdir: Path, profile: str | None) -> Iterator[int]:
    """`consent-api worker` on the server's store, niced as serve starts it; yields its pid."""
    argv = [sys.executable, *(["-m", "cProfile", "-o", profile] if profile else []),
            "-m", "consent_api.cli", "worker", "--nice", WORKER_NICE]
    full_env = {**os.environ, **env, "CONSENT_DATABASE_URL": server.database_url or "",
                "CONSENT_ADMIN_TOKEN": OPERATOR_TOKEN,
                "PYTHONPATH": os.pathsep.join(filter(None, [str(servers.REPO), os.environ.get("PYTHONPATH")]))}
    with open(workdir / "worker.log", "ab") as out:
        process = subprocess.Popen(argv, env=full_env, stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT, cwd=workdir)
    try:
        yield process.pid
    finally:
        process.terminate()
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def cpu_s(pids: Callable[[], list[int]]) -> float:
    """User + system CPU seconds of the processes (from /proc/<pid>/stat)."""
    total = 0
    for pid in pids():
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / TICK


class Cpu:
    """CPU seconds used by each named group of processes between start() and stop()."""

    def __init__(self, groups: dict[str, Callable[[], list[int]]]) -> None:
        self.groups = groups

    @contextlib.contextmanager
    def measure(self, into: dict[str, list[float]]) -> Iterator[None]:
        before = {name: cpu_s(pids) for name, pids in self.groups.items()}
        yield
        for name, pids in self.groups.items():
            into.setdefault(name, []).append(round(cpu_s(pids) - before[name], 2))


# --- tenants and writes --------------------------------------------------------------------------------
def body(granted: bool, purpose: str) -> dict:
    return {"decisions": [{"purpose": purpose, "granted": granted}], "policy_version": "2026-01",
            "source": {"channel": "ios"}}


def make_tenant(server: servers.Server, name: str) -> Tenant:
    tenant = server.api().new_tenant(name, purposes=None)
    tenant.post("/v1/policies", {"version": "2026-01", "effective_at": "2026-01-01T00:00:00Z"}, expect=201)
    for purpose in PURPOSES:
        tenant.put(f"/v1/purposes/{purpose}", {"kind": "processing", "title": {"en": purpose}}, expect=201)
    return tenant


def hooks(tenant: Tenant, receiver: Receiver, n: int, tag: str) -> list[str]:
    return [tenant.post("/v1/webhooks", {"url": f"{receiver.url}/{tag}/{i}"}, expect=201).json["id"]
            for i in range(n)]


def percentiles(samples: list[float]) -> dict:
    samples = sorted(samples)
    return {"p50_ms": round(statistics.median(samples), 1),
            "p99_ms": round(samples[min(len(samples) - 1, int(len(samples) * 0.99))], 1),
            "max_ms": round(samples[-1], 1)}


def paced(tenant: Tenant, rate: float, seconds: float, prefix: str) -> tuple[dict[str, float], list[float], float]:
    """Open-loop writes at `rate`: each answered event's answer time, and each write's latency
    counted from when it was due (so a late start is not hidden), and the achieved rate."""
    answered: dict[str, float] = {}
    latencies: list[float] = []
    lock = threading.Lock()

    def write(n: int, due: float) -> None:
        answer = tenant.post(f"/v1/subjects/{prefix}-{n % 500}/consents", body(n % 2 == 0, PURPOSES[n % 3]))
        now = time.monotonic()
        if answer.status_code == 201:
            with lock:
                answered[answer.json["events"][0]["event_id"]] = now
                latencies.append((now - due) * 1000)

    total = int(rate * seconds)
    start = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        for n in range(total):
            due = start + n / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pool.submit(write, n, due)
    return answered, latencies, len(answered) / (time.monotonic() - start)


def latency(server: servers.Server, receiver: Receiver, rate: float, seconds: float, pairs: int) -> dict:
    """Paced writes to a tenant with 3 webhooks (arrival - the write's 201, per receiver) and to
    one with none, alternating; the write latencies of both."""
    bare, hooked = make_tenant(server, "paced, no hooks"), make_tenant(server, "paced, 3 hooks")
    paths = [f"/lat/{i}" for i in range(3)]
    hooks(hooked, receiver, 3, "lat")
    answered: dict[str, float] = {}
    writes: dict[str, list[float]] = {"none": [], "three": []}
    rates: dict[str, list[float]] = {"none": [], "three": []}
    for pair in range(pairs):
        for name, tenant in (("none", bare), ("three", hooked)):
            before = receiver.count
            got, lat, achieved = paced(tenant, rate, seconds, f"{name}{pair}")
            writes[name] += lat
            rates[name].append(round(achieved, 1))
            if name == "three":
                answered.update(got)
                receiver.wait(before + 3 * len(got), 120)  # all delivered before the next slice
    arrivals = receiver.arrivals()
    e2e = [(arrivals[(p, event_id)] - at) * 1000 for event_id, at in answered.items() for p in paths
           if (p, event_id) in arrivals]
    none_w, three_w = percentiles(writes["none"]), percentiles(writes["three"])
    return {"writes": len(answered), "writes_per_s": rates["three"], "deliveries": len(e2e),
            "missing": 3 * len(answered) - len(e2e), **percentiles(e2e),
            "write_none": none_w, "write_three": three_w, "write_none_per_s": rates["none"],
            "write_p50_ratio": round(three_w["p50_ms"] / none_w["p50_ms"], 2),
            "write_p99_ratio": round(three_w["p99_ms"] / none_w["p99_ms"], 2)}


def throughput(server: servers.Server, receiver: Receiver, backlog: int, cpu: Cpu) -> dict:
    """A backlog of `backlog` decisions of distinct subjects, owed to one endpoint enabled at once."""
    tenant = make_tenant(server, "throughput")
    [hook] = hooks(tenant, receiver, 1, "tp")
    tenant.call("PATCH", f"/v1/webhooks/{hook}", {"status": "disabled"}, expect=200)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: tenant.post(f"/v1/subjects/tp-{n}/consents", body(True, "push"), expect=201),
                      range(backlog)))
    before = receiver.count
    used: dict[str, list[float]] = {}
    with cpu.measure(used):
        started = time.monotonic()
        tenant.call("PATCH", f"/v1/webhooks/{hook}", {"status": "enabled"}, expect=200)
        complete = receiver.wait(before + backlog, 300)
        seconds = time.monotonic() - started
    return {"messages": backlog, "seconds": round(seconds, 2), "deliveries_per_s": round(backlog / seconds, 1),
            "complete": complete, "cpu_s": {k: v[0] for k, v in used.items()},
            "worker_cpu_ms_per_delivery": round(used["worker"][0] * 1000 / backlog, 2)}


def write_files(workdir: Path, tag: str, tenants: dict[str, Tenant]) -> dict[str, tuple[Path, str]]:
    files = {}
    for name, tenant in tenants.items():
        lines = [("POST", f"/v1/subjects/{tag}-{n % 5000}/consents", json.dumps(body(n % 3 != 0, PURPOSES[n % 3])))
                 for n in range(20_000)]
        files[name] = (loadgen.write_requests(workdir / f"writes-{tag}-{name}.req", lines), tenant.admin)
    return files


def slices(server: servers.Server, files: dict[str, tuple[Path, str]], seconds: float, pairs: int,
           connections: int, cpu: Cpu, between: Callable[[], None]) -> dict:
    """Alternating wrk slices (none, three) x pairs; CPU seconds per group and slice."""
    loads: dict[str, list[loadgen.Load]] = {"none": [], "three": []}
    used: dict[str, dict[str, list[float]]] = {"none": {}, "three": {}}
    for _ in range(pairs):
        for name in ("none", "three"):
            req, token = files[name]
            with cpu.measure(used[name]):
                loads[name].append(loadgen.run(server.url, req, seconds=seconds, connections=connections,
                                               token=token))
            between()
    ratios = [t.rps / n.rps for n, t in zip(loads["none"], loads["three"], strict=True)]
    per_write = {name: [round(cpu * 1000 / load.requests, 3) for cpu, load in zip(used[name]["api"], loads[name],
                                                                                   strict=True)]
                 for name in loads}  # the API processes' CPU per write: what the machine's other load changes least
    cpu_ratios = [t / n for n, t in zip(per_write["none"], per_write["three"], strict=True)]
    return {"api_cpu_ms_per_write": per_write, "cpu_slice_ratios": [round(r, 3) for r in cpu_ratios],
            "cpu_ratio": round(statistics.median(cpu_ratios), 3),
            "none_rps": [round(x.rps) for x in loads["none"]], "three_rps": [round(x.rps) for x in loads["three"]],
            "none_p99_ms": [x.p99_ms for x in loads["none"]], "three_p99_ms": [x.p99_ms for x in loads["three"]],
            "errors": sum(x.errors for x in loads["none"] + loads["three"]),
            "slice_ratios": [round(r, 3) for r in ratios], "ratio": round(statistics.median(ratios), 3),
            "cpu_s": used}


def drain(server: servers.Server, timeout_s: float) -> None:
    """Wait until every endpoint is owed nothing (the lag metric reads 0 for each)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = server.api().get("/metrics", expect=200).get_data(as_text=True)
        lags = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                if line.startswith("consent_api_webhook_lag_seconds{")]
        if all(lag == 0 for lag in lags):
            return
        time.sleep(0.2)


def report(result: dict) -> None:
    held, lat, tp, flow = result["held"], result["latency"], result["throughput"], result["flowing"]

    def cpu(part: dict, name: str, group: str) -> str:
        return "/".join(f"{x:.1f}" for x in part["cpu_s"][name].get(group, []))

    print(f"\nwebhooks, consent-api serve (2 workers) + consent-api worker (nice {WORKER_NICE}) + receiver "
          f"process, 127.0.0.1, {result['cpus']} cores; load average {result['load_before'][0]:.1f} at start, "
          f"{result['load_after'][0]:.1f} at end")
    print(f"  1. write path, deliveries held (worker stopped), 3 webhooks / none: API CPU per write "
          f"x{held['cpu_ratio']} (slices {held['cpu_slice_ratios']}; ms {held['api_cpu_ms_per_write']['three']} vs "
          f"{held['api_cpu_ms_per_write']['none']}); req/s x{held['ratio']} (slices {held['slice_ratios']}; "
          f"{held['three_rps']} vs {held['none_rps']})")
    print(f"  2. paced {lat['writes_per_s']} writes/s x 3 webhooks, write's 201 -> receiver: p50 {lat['p50_ms']} ms, "
          f"p99 {lat['p99_ms']} ms, max {lat['max_ms']} ms ({lat['deliveries']} deliveries, {lat['missing']} missing)")
    print(f"     write latency while deliveries flow, 3 webhooks vs none: p50 {lat['write_three']['p50_ms']} vs "
          f"{lat['write_none']['p50_ms']} ms (x{lat['write_p50_ratio']}), p99 {lat['write_three']['p99_ms']} vs "
          f"{lat['write_none']['p99_ms']} ms (x{lat['write_p99_ratio']})")
    print(f"  3. deliveries to one receiver: {tp['deliveries_per_s']}/s ({tp['messages']} in {tp['seconds']} s); "
          f"worker {tp['worker_cpu_ms_per_delivery']} ms CPU per delivery, receiver {tp['cpu_s']['receiver']} s CPU")
    print(f"  4. write path saturated (wrk -c{result['connections']}) while deliveries flow on the same cores: "
          f"3 webhooks / none = x{flow['ratio']} (slices {flow['slice_ratios']}; req/s {flow['three_rps']} vs "
          f"{flow['none_rps']}); API CPU per write x{flow['cpu_ratio']}")
    print(f"     CPU s per slice with 3 webhooks: worker {cpu(flow, 'three', 'worker')}, receiver "
          f"{cpu(flow, 'three', 'receiver')}, API {cpu(flow, 'three', 'api')} "
          f"(without: API {cpu(flow, 'none', 'api')}, worker {cpu(flow, 'none', 'worker')})")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.webhooks_bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--rate", type=float, default=100, help="paced writes per second for latency (default 100)")
    p.add_argument("--seconds", type=float, default=10, help="seconds per paced slice (default 10)")
    p.add_argument("--paced-pairs", type=int, default=2, help="alternating paced none/three slices (default 2)")
    p.add_argument("--backlog", type=int, default=3000, help="messages for the throughput run (default 3000)")
    p.add_argument("--duration", type=float, default=8, help="seconds per wrk slice (default 8)")
    p.add_argument("--pairs", type=int, default=3, help="alternating wrk none/three slices (default 3)")
    p.add_argument("--connections", type=int, default=8)
    p.add_argument("--profile-worker", metavar="FILE", help="run the worker under cProfile, stats to FILE")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    p.add_argument("--receive", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.receive:
        receive()
        return 0
    loadgen.require_wrk()
    result: dict = {"load_before": os.getloadavg(), "cpus": os.cpu_count(), "connections": args.connections}
    receiver = Receiver()
    try:
        with tempfile.TemporaryDirectory(prefix="consent-webhooks-") as tmp:
            workdir = Path(tmp)
            env = {"CONSENT_WEBHOOK_ALLOW_PRIVATE": "1", "CONSENT_RATE_LIMIT": "off"}
            with servers.serving(workdir, env={**env, "CONSENT_WORKER": "off"}) as server:
                worker_pid: list[int] = []
                cpu = Cpu({"api": server.pids, "worker": lambda: worker_pid,
                           "receiver": lambda: [receiver.process.pid]})
                print("bench: write path, deliveries held ...", file=sys.stderr)
                bare = make_tenant(server, "no hooks")
                held = make_tenant(server, "3 hooks, held")
                held_hooks = hooks(held, receiver, 3, "held")
                files = write_files(workdir, "held", {"none": bare, "three": held})
                result["held"] = slices(server, files, args.duration, args.pairs, args.connections, cpu,
                                        lambda: None)
                for hook in held_hooks:  # owed nothing once the worker starts
                    held.call("DELETE", f"/v1/webhooks/{hook}", expect=204)
                print(f"  {result['held']}", file=sys.stderr)
                with worker(server, env, workdir, args.profile_worker) as pid:
                    worker_pid.append(pid)
                    print("bench: latency at a paced rate ...", file=sys.stderr)
                    result["latency"] = latency(server, receiver, args.rate, args.seconds, args.paced_pairs)
                    print(f"  {result['latency']}", file=sys.stderr)
                    print("bench: deliveries per second ...", file=sys.stderr)
                    result["throughput"] = throughput(server, receiver, args.backlog, cpu)
                    print(f"  {result['throughput']}", file=sys.stderr)
                    print("bench: write path while deliveries flow ...", file=sys.stderr)
                    flowing = make_tenant(server, "3 hooks, flowing")
                    hooks(flowing, receiver, 3, "wp")
                    files = write_files(workdir, "flow", {"none": bare, "three": flowing})
                    result["flowing"] = slices(server, files, args.duration, args.pairs, args.connections, cpu,
                                               lambda: drain(server, 180))
                    print(f"  {result['flowing']}", file=sys.stderr)
    finally:
        receiver.stop()
    result["load_after"] = os.getloadavg()
    report(result)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"webhooks-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
