"""python -m bench.webhooks_bench: webhooks end to end, against a real `consent-api serve` (with
its delivery worker) and a fast receiver on 127.0.0.1, all in one run:

- latency from a write's 201 to each receiver's arrival (p50, p99) at a paced 100 writes/s,
  with 3 webhooks registered;
- deliveries per second to one fast receiver: a backlog of distinct subjects, sent once the
  endpoint is enabled;
- the write path's speed (wrk, durable decision writes) for a tenant with 3 webhooks against a
  tenant with none, alternating, the worker drained between slices; the ratio is the median of
  the pairs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench import loadgen
from tests.support import servers
from tests.support.api import Tenant

PURPOSES = ("push", "sms", "location")


class Arrivals:
    """A receiver that answers 204 at once and notes when each message arrived."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.at: dict[tuple[str, str], float] = {}  # (path, event id) -> first arrival
        self.count = 0
        arrivals = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                now = time.monotonic()
                event = (json.loads(data).get("data") or {}).get("event") or {}
                with arrivals.lock:
                    arrivals.count += 1
                    arrivals.at.setdefault((self.path, event.get("event_id", "")), now)
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, count: int, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                if self.count >= count:
                    return True
            time.sleep(0.01)
        return False


def body(granted: bool, purpose: str) -> dict:
    return {"decisions": [{"purpose": purpose, "granted": granted}], "policy_version": "2026-01",
            "source": {"channel": "ios"}}


def make_tenant(server: servers.Server, name: str) -> Tenant:
    tenant = server.api().new_tenant(name, purposes=None)
    tenant.post("/v1/policies", {"version": "2026-01", "effective_at": "2026-01-01T00:00:00Z"}, expect=201)
    for purpose in PURPOSES:
        tenant.put(f"/v1/purposes/{purpose}", {"kind": "processing", "title": {"en": purpose}}, expect=201)
    return tenant


def hooks(tenant: Tenant, receiver: Arrivals, n: int, tag: str) -> list[str]:
    return [tenant.post("/v1/webhooks", {"url": f"{receiver.url}/{tag}/{i}"}, expect=201).json["id"]
            for i in range(n)]


def latency(server: servers.Server, receiver: Arrivals, rate: float, seconds: float) -> dict:
    """Paced writes to a tenant with 3 webhooks; latency = receiver arrival - the write's 201."""
    tenant = make_tenant(server, "latency")
    paths = [f"/lat/{i}" for i in range(3)]
    hooks(tenant, receiver, 3, "lat")
    answered: dict[str, float] = {}
    lock = threading.Lock()
    before = receiver.count

    def write(n: int) -> None:
        answer = tenant.post(f"/v1/subjects/lat-{n % 500}/consents", body(n % 2 == 0, PURPOSES[n % 3]))
        if answer.status_code == 201:
            with lock:
                answered[answer.json["events"][0]["event_id"]] = time.monotonic()

    total = int(rate * seconds)
    start = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        for n in range(total):
            delay = start + n / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pool.submit(write, n)
    took = time.monotonic() - start
    receiver.wait(before + 3 * len(answered), 120)
    samples = [(receiver.at[(p, event_id)] - at) * 1000 for event_id, at in answered.items() for p in paths
               if (p, event_id) in receiver.at]
    samples.sort()
    return {"writes": len(answered), "writes_per_s": round(len(answered) / took, 1), "deliveries": len(samples),
            "p50_ms": round(statistics.median(samples), 1),
            "p99_ms": round(samples[min(len(samples) - 1, int(len(samples) * 0.99))], 1),
            "max_ms": round(samples[-1], 1)}


def throughput(server: servers.Server, receiver: Arrivals, backlog: int) -> dict:
    """A backlog of `backlog` decisions of distinct subjects, owed to one endpoint enabled at once."""
    tenant = make_tenant(server, "throughput")
    [hook] = hooks(tenant, receiver, 1, "tp")
    tenant.call("PATCH", f"/v1/webhooks/{hook}", {"status": "disabled"}, expect=200)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: tenant.post(f"/v1/subjects/tp-{n}/consents", body(True, "push"), expect=201),
                      range(backlog)))
    before = receiver.count
    started = time.monotonic()
    tenant.call("PATCH", f"/v1/webhooks/{hook}", {"status": "enabled"}, expect=200)
    complete = receiver.wait(before + backlog, 300)
    seconds = time.monotonic() - started
    return {"messages": backlog, "seconds": round(seconds, 2), "deliveries_per_s": round(backlog / seconds, 1),
            "complete": complete}


def write_path(server: servers.Server, receiver: Arrivals, workdir: Path, seconds: float, pairs: int,
               connections: int) -> dict:
    """wrk writes to a tenant without webhooks and one with 3, alternating; drained in between."""
    bare, hooked = make_tenant(server, "no hooks"), make_tenant(server, "3 hooks")
    hooks(hooked, receiver, 3, "wp")
    files = {}
    for name, tenant in (("none", bare), ("three", hooked)):
        lines = [("POST", f"/v1/subjects/w-{n % 5000}/consents", json.dumps(body(n % 3 != 0, PURPOSES[n % 3])))
                 for n in range(20_000)]
        files[name] = (loadgen.write_requests(workdir / f"writes-{name}.req", lines), tenant.admin)
    loads: dict[str, list[loadgen.Load]] = {"none": [], "three": []}
    for _ in range(pairs):
        for name in ("none", "three"):
            req, token = files[name]
            loads[name].append(loadgen.run(server.url, req, seconds=seconds, connections=connections, token=token))
            if name == "three":  # let the worker catch up, so the next 'none' slice runs without its backlog
                drain(server, hooked, 120)
    ratios = [t.rps / n.rps for n, t in zip(loads["none"], loads["three"], strict=True)]
    return {"none_rps": [round(x.rps) for x in loads["none"]], "three_rps": [round(x.rps) for x in loads["three"]],
            "three_p99_ms": [x.p99_ms for x in loads["three"]], "none_p99_ms": [x.p99_ms for x in loads["none"]],
            "ratio": round(statistics.median(ratios), 3)}


def drain(server: servers.Server, tenant: Tenant, timeout_s: float) -> None:
    """Wait until the tenant's endpoints are owed nothing (the lag metric reads 0 for each)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = server.api().get("/metrics", expect=200).get_data(as_text=True)
        lags = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                if line.startswith("consent_api_webhook_lag_seconds{")]
        if all(lag == 0 for lag in lags):
            return
        time.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.webhooks_bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--rate", type=float, default=100, help="paced writes per second for latency (default 100)")
    p.add_argument("--seconds", type=float, default=20, help="seconds of paced writes (default 20)")
    p.add_argument("--backlog", type=int, default=3000, help="messages for the throughput run (default 3000)")
    p.add_argument("--duration", type=float, default=10, help="seconds per wrk slice (default 10)")
    p.add_argument("--pairs", type=int, default=3, help="alternating none/three slices (default 3)")
    p.add_argument("--connections", type=int, default=8)
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    args = p.parse_args(argv)
    loadgen.require_wrk()
    result = {"load_before": os.getloadavg(), "cpus": os.cpu_count()}
    receiver = Arrivals()
    with tempfile.TemporaryDirectory(prefix="consent-webhooks-") as tmp:
        env = {"CONSENT_WEBHOOK_ALLOW_PRIVATE": "1", "CONSENT_RATE_LIMIT": "off"}
        with servers.serving(Path(tmp), env=env) as server:
            print("bench: latency at a paced rate ...", file=sys.stderr)
            result["latency"] = latency(server, receiver, args.rate, args.seconds)
            print(f"  {result['latency']}", file=sys.stderr)
            print("bench: deliveries per second ...", file=sys.stderr)
            result["throughput"] = throughput(server, receiver, args.backlog)
            print(f"  {result['throughput']}", file=sys.stderr)
            print("bench: write path, 3 webhooks vs none ...", file=sys.stderr)
            result["write_path"] = write_path(server, receiver, Path(tmp), args.duration, args.pairs,
                                              args.connections)
            print(f"  {result['write_path']}", file=sys.stderr)
    result["load_after"] = os.getloadavg()
    lat, tp, wp = result["latency"], result["throughput"], result["write_path"]
    print(f"\nwebhooks, consent-api serve (2 workers + delivery worker), receiver on 127.0.0.1; "
          f"load average {result['load_before'][0]:.1f} at start, {result['load_after'][0]:.1f} at end")
    print(f"  write answered -> receiver, {lat['writes_per_s']:.0f} writes/s x 3 webhooks: "
          f"p50 {lat['p50_ms']} ms, p99 {lat['p99_ms']} ms ({lat['deliveries']} deliveries)")
    print(f"  deliveries to one receiver: {tp['deliveries_per_s']}/s ({tp['messages']} in {tp['seconds']} s)")
    print(f"  durable writes, 3 webhooks vs none: x{wp['ratio']} (req/s {wp['three_rps']} vs {wp['none_rps']})")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"webhooks-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
