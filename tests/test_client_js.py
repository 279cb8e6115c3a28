"""The web snippet from the Python suite: its node unit tests, and the bundle (and the parts it
loads on demand) the server serves checked against a fresh build and the 6 KB gzip budget of
what every page loads.

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


def test_served_bundle_and_parts_are_a_fresh_build_within_budget(client, tmp_path, capsys):
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    script = ("import { writeFileSync } from 'node:fs'; import { basename } from 'node:path';"
              "import { buildAll } from './build.mjs';"
              "for (const [path, code] of Object.entries(await buildAll()))"
              f" writeFileSync({str(fresh)!r} + '/' + basename(path), code);")
    built = subprocess.run([node(), "--input-type=module", "-e", script], cwd=CLIENT, check=False,
                           capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stderr
    assert sorted(p.name for p in fresh.iterdir()) == ["consent-app.js", "consent-panel.js", "consent.js"]

    sizes = {}
    for name in ("consent.js", "consent-panel.js", "consent-app.js"):
        served = client.get(f"/sdk/{name}")
        assert served.status_code == 200
        assert served.get_data() == (fresh / name).read_bytes(), (
            f"consent_api/web/static/{name} is stale: run `npm run build --prefix client_js` and commit it")
        sizes[name] = len(gzip.compress(served.get_data(), compresslevel=9))
    with capsys.disabled():
        print("\n" + ", ".join(f"{name}: {size} bytes gzip" for name, size in sizes.items())
              + f" (every page loads consent.js only: budget {BUDGET_GZIP}, {BUDGET_GZIP - sizes['consent.js']} left)")
    assert sizes["consent.js"] <= BUDGET_GZIP
