"""The web snippet from the Python suite: its node unit tests, and the bundle the server
serves checked against a fresh build and the 6 KB gzip budget.

Needs node and `npm ci --prefix client_js` (the README's test command runs it); a missing
node fails these tests, it never skips them.
"""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CLIENT = REPO / "client_js"
BUDGET_GZIP = 6 * 1024


def node() -> str:
    found = shutil.which("node")
    if found is None:
        pytest.fail("node is missing: install nodejs (as .ci/run does) to test client_js", pytrace=False)
    if not (CLIENT / "node_modules" / "esbuild").is_dir():
        pytest.fail("client_js/node_modules is missing: run `npm ci --prefix client_js`", pytrace=False)
    return found


def test_node_unit_tests_pass():
    result = subprocess.run([node(), "--test", "test/"], cwd=CLIENT, capture_output=True, text=True,
                            check=False, timeout=120)
    summary = [line for line in result.stdout.splitlines() if line.startswith("# ")]
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "# fail 0" in summary and not any(line.startswith("# pass 0") for line in summary), summary


def test_served_bundle_is_a_fresh_build_within_budget(client, tmp_path, capsys):
    fresh = tmp_path / "consent.js"
    script = ("import { writeFileSync } from 'node:fs'; import { bundle } from './build.mjs';"
              f"writeFileSync({str(fresh)!r}, await bundle());")
    built = subprocess.run([node(), "--input-type=module", "-e", script], cwd=CLIENT, check=False,
                           capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stderr

    served = client.get("/sdk/consent.js")
    assert served.status_code == 200
    assert served.get_data() == fresh.read_bytes(), (
        "consent_api/web/static/consent.js is stale: run `npm run build --prefix client_js` and commit it")

    size = len(gzip.compress(served.get_data(), compresslevel=9))
    with capsys.disabled():
        print(f"\nconsent.js: {len(served.get_data())} bytes, {size} bytes gzip "
              f"(budget {BUDGET_GZIP}, {BUDGET_GZIP - size} left)")
    assert size <= BUDGET_GZIP
