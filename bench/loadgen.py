"""wrk, driven by bench/wrk/requests.lua (or mixed.lua, which times GETs apart from POSTs) over
a file of requests; bounded in time."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent / "wrk" / "requests.lua"
MIXED = SCRIPT.with_name("mixed.lua")


@dataclass(frozen=True)
class Load:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int  # connect/read/write/timeout errors and non-2xx answers
    bytes: int
    # mixed.lua only: per method, {count, non2xx, p50_ms, p99_ms, max_ms, rps}
    by_method: dict[str, dict[str, float]] | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def require_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    return path


def write_requests(path: Path, lines: list[tuple[str, str, str]]) -> Path:
    """(method, path, body) triples; bodies are one-line JSON."""
    with open(path, "w") as fh:
        for method, target, body in lines:
            assert "\t" not in target and "\n" not in body
            fh.write(f"{method}\t{target}\t{body}\n")
    return path


def run(url: str, requests_file: Path, *, seconds: float, connections: int, threads: int = 2,
        token: str | None = None, script: Path = SCRIPT) -> Load:
    """script MIXED runs one wrk thread per connection (see mixed.lua), whatever threads says."""
    threads = connections if script == MIXED else min(threads, connections)
    argv = [require_wrk(), f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency",
            "--timeout", "10s", "-H", "Content-Type: application/json", "-s", str(script)]
    if token:
        argv += ["-H", f"Authorization: Bearer {token}"]
    argv += [url, "--", str(requests_file)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    line = next((l for l in done.stdout.splitlines() if l.startswith("BENCH_JSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    data = json.loads(line[len("BENCH_JSON "):])
    seconds_run = data["duration_us"] / 1e6
    lat = data["latency_us"]
    by_method = {method: {"count": m["count"], "non2xx": m["non2xx"], "rps": round(m["count"] / seconds_run, 1),
                          "p50_ms": m["p50"] / 1000, "p99_ms": m["p99"] / 1000, "max_ms": m["max"] / 1000}
                 for method, m in data.get("by_method_us", {}).items()} or None
    return Load(
        requests=data["requests"], seconds=round(seconds_run, 2),
        rps=round(data["requests"] / seconds_run, 1),
        p50_ms=lat["p50"] / 1000, p90_ms=lat["p90"] / 1000, p99_ms=lat["p99"] / 1000,
        max_ms=lat["max"] / 1000, errors=sum(data["errors"].values()), bytes=data["bytes"],
        by_method=by_method,
    )
