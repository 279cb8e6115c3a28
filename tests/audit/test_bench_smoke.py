"""bench/export_bench.py on a tiny ledger, so the benchmark cannot rot between the runs that matter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_export_bench_runs_and_verify_export_accepts_its_export(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "export_bench.py"), "--events", "2000",
                             "--dir", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "verify-export: OK: 2000 events, 100 subjects" in result.stdout
    for phase in ("baseline: raw SELECT doc", "GET /v1/audit/events (NDJSON)", "consent-api export"):
        assert phase in result.stdout
