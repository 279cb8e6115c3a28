"""`python -m bench` on a tiny population, so the benchmark behind README's Performance table
cannot rot: every scenario runs against a live server, without errors, and lands in the JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ("check", "state", "history", "audience", "bulk_check", "write")


def test_python_m_bench_prints_ratios_and_writes_json(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--sizes", "300", "--duration", "1", "--warmup", "0", "--pairs", "1",
         "--export-seconds", "5", "--seed-cache", "", "--out", str(tmp_path / "out"),
         "--workdir", str(tmp_path / "work")],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "x bare" in result.stdout and "check one purpose" in result.stdout
    [written] = (tmp_path / "out").glob("bench-*.json")
    tier = json.loads(written.read_text())["tiers"][0]
    assert tier["subjects"] == 300 and tier["bare_rps"] > 0
    for name in SCENARIOS:
        row = tier["rows"][name]
        assert row["errors"] == 0 and row["requests"] > 0 and row["ratio"] > 0, (name, row)
    assert tier["export"]["status"] == 200 and tier["export"]["complete"]
    # seeded, then one per write; wrk stops counting with up to one write per connection in flight
    written_events = tier["export"]["events"] - 900
    writes = tier["rows"]["write"]
    assert writes["requests"] <= written_events <= writes["requests"] + writes["connections"]


def test_the_webhooks_bench_runs_end_to_end(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "bench.webhooks_bench", "--rate", "20", "--seconds", "2", "--backlog", "50",
         "--duration", "1", "--pairs", "1", "--paced-pairs", "1", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "p99" in result.stdout and "deliveries to one receiver" in result.stdout
    [written] = tmp_path.glob("webhooks-*.json")
    data = json.loads(written.read_text())
    assert data["latency"]["deliveries"] == 3 * data["latency"]["writes"] > 0
    assert data["latency"]["write_p50_ratio"] > 0 and data["latency"]["write_p99_ratio"] > 0
    assert data["throughput"]["complete"] and data["throughput"]["cpu_s"]["worker"] > 0
    for phase in ("held", "flowing"):  # deliveries held, then flowing: both ratios, with the CPU they used
        assert data[phase]["ratio"] > 0 and data[phase]["cpu_ratio"] > 0
    assert data["held"]["cpu_s"]["three"]["worker"] == [0.0]  # no worker ran while deliveries were held
    assert data["flowing"]["cpu_s"]["three"]["worker"][0] > 0
