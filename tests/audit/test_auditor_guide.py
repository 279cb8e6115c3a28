"""The auditor guide's Python snippets, run exactly as printed against real exports."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "auditor-guide.md"


def snippet(name: str) -> str:
    match = re.search(rf"<!-- snippet: {re.escape(name)} -->\n```python\n(.*?)```", GUIDE.read_text(), re.S)
    assert match, f"{name} is missing from {GUIDE}"
    return match.group(1)


@pytest.fixture
def scripts(tmp_path: Path) -> dict[str, Path]:
    paths = {}
    for name in ("verify_chain.py", "verify_manifest.py", "resume_cursor.py"):
        paths[name] = tmp_path / name
        paths[name].write_text(snippet(name))
    return paths


def run(script: Path, *args: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(script), *map(str, args)], capture_output=True, text=True,
                          timeout=60)


@pytest.fixture
def export_files(ledger, tmp_path: Path):
    events, manifest, jwks = tmp_path / "events.ndjson", tmp_path / "m.jws", tmp_path / "jwks.json"
    events.write_bytes(ledger.export())
    manifest.write_text(ledger.manifest())
    jwks.write_text(json.dumps(ledger.jwks()))
    return events, manifest, jwks


def test_the_stdlib_chain_snippet_is_short_and_accepts_a_real_export(scripts, export_files):
    assert len(snippet("verify_chain.py").strip().splitlines()) <= 17
    events = export_files[0]
    result = run(scripts["verify_chain.py"], events)
    digest = hashlib.sha256(events.read_bytes()).hexdigest()
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"5 chains intact; sha256 of the file: {digest}\n"


@pytest.mark.parametrize("tamper", ["content", "drop", "swap"])
def test_the_stdlib_chain_snippet_rejects_tampering(scripts, export_files, tamper):
    events = export_files[0]
    raw = events.read_bytes().splitlines(keepends=True)
    if tamper == "content":
        raw[4] = raw[4].replace(b'"locale":"zh-CN"', b'"locale":"en"')
    elif tamper == "drop":
        del raw[1]
    else:
        raw[0], raw[1] = raw[1], raw[0]
    events.write_bytes(b"".join(raw))
    result = run(scripts["verify_chain.py"], events)
    assert result.returncode == 1 and "the chain of sr_" in result.stderr


def test_the_manifest_snippet_accepts_the_signed_export_and_rejects_another(scripts, export_files, ledger):
    events, manifest, jwks = export_files
    result = run(scripts["verify_manifest.py"], events, manifest, jwks)
    assert result.returncode == 0, result.stderr
    assert "13 events" in result.stdout and "signed by sk-" in result.stdout
    manifest.write_text(ledger.manifest(purpose="location"))
    result = run(scripts["verify_manifest.py"], events, manifest, jwks)
    assert result.returncode == 1 and "not the export the manifest signs" in result.stderr


def test_the_resume_snippet_drops_a_torn_line_and_its_cursor_fetches_the_rest(scripts, ledger, tmp_path):
    full = ledger.export()
    cut = full.index(b"\n", len(full) // 2) + 1
    (tmp_path / "events.ndjson").write_bytes(full[:cut + 25])
    result = subprocess.run([sys.executable, str(scripts["resume_cursor.py"])], capture_output=True,
                            text=True, cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "events.ndjson").read_bytes() == full[:cut]
    assert full[:cut] + ledger.export(cursor=result.stdout.strip()) == full
