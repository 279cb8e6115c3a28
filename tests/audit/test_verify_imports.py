"""An auditor runs consent_api.verify without our stack: it must import no web, store or service code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_verify_imports_only_the_stdlib_pyjwt_and_the_ledger_rules():
    code = "import json, sys; import consent_api.verify; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                            timeout=60, check=True)
    modules = set(json.loads(result.stdout))
    ours = {m for m in modules if m.startswith("consent_api")}
    assert ours <= {"consent_api", "consent_api.verify", "consent_api.domain", "consent_api.domain.ledger",
                    "consent_api.domain.model", "consent_api.domain.clock",
                    "consent_api.domain.requests"}, ours  # which fields a rights request's event carries
    for foreign in ("flask", "werkzeug", "marshmallow", "pymongo", "sqlite3", "granian"):
        assert foreign not in modules
