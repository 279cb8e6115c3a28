"""bench/stats_bench.py on a tiny ledger, so the benchmark cannot rot between the runs that matter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_stats_bench_runs_and_prints_both_figures(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "stats_bench.py"), "--events", "3000",
                             "--repeat", "2", "--threads", "2", "--slice", "0.3", "--rounds", "1",
                             "--dir", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "GET /v1/stats, 365 days x 20 purposes (7,300 rows)" in result.stdout
    assert "ratio on/off" in result.stdout and "CPU per write" in result.stdout
