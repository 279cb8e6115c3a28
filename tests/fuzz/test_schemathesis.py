"""Schema-driven fuzzing of a live `consent-api serve` with schemathesis: every operation of
openapi.yaml, positive and negative data, as every kind of caller. Zero 5xx, zero answers that
break the document, no traceback in the server's log.

The server is the real CLI (`python -m consent_api.cli serve`, granian) on 127.0.0.1 at a free
port with a fresh SQLite file. Each role gets its own tenant, so that one run archiving purposes
or erasing subjects does not starve another. The admin run leaves out the two revocations (its
stateful phase would revoke its own key and go on as 401); a separate `revoker` run covers them.

Profiles (CONSENT_FUZZ_PROFILE):
    ci    (default) about 3 minutes on 2 cores: a few examples per operation, fixed seed
    long  10-30x the examples, all phases for every role (about 10 minutes on 2 cores); before a release:

        CONSENT_FUZZ_PROFILE=long pytest -m fuzz -s tests/fuzz

CONSENT_FUZZ_SEED overrides the seed (default 20261122). A failing run prints schemathesis's
report with a curl line per failure; the server log is kept in pytest's tmp directory.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.builders import APP_PURPOSES, POLICY, decision
from tests.support import servers
from tests.support.api import OPERATOR_TOKEN, bearer

pytestmark = pytest.mark.fuzz

SUBJECT = "u-10001"
ALL_PHASES = "examples,coverage,fuzzing,stateful"


@dataclass(frozen=True)
class Run:
    examples: int
    phases: str = "examples,coverage,fuzzing"
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()


REVOCATIONS = ("revokeKey", "revokeSubjectTokenKey")
PROFILES: dict[str, dict[str, Run]] = {
    "ci": {
        "operator": Run(5),
        "admin": Run(25, ALL_PHASES, exclude=REVOCATIONS),
        "revoker": Run(10, include=(*REVOCATIONS, "getKey")),
        "writer": Run(10),
        "reader": Run(8),
        "auditor": Run(5),
        "publishable": Run(5),
        "subject": Run(10),
    },
    "long": {
        "operator": Run(100, ALL_PHASES),
        "admin": Run(150, ALL_PHASES, exclude=REVOCATIONS),
        "revoker": Run(100, include=(*REVOCATIONS, "getKey")),
        "writer": Run(150, ALL_PHASES),
        "reader": Run(100, ALL_PHASES),
        "auditor": Run(100, ALL_PHASES),
        "publishable": Run(100, ALL_PHASES),
        "subject": Run(150, ALL_PHASES),
    },
}
PROFILE = os.environ.get("CONSENT_FUZZ_PROFILE", "ci")
SEED = int(os.environ.get("CONSENT_FUZZ_SEED", "20261122"))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # Webhooks may be registered at 127.0.0.1 only (the hooks point every positive case there)
    # and no delivery worker runs: a fuzz run sends nothing to any receiver.
    env = {"CONSENT_WEBHOOK_ALLOW_PRIVATE": "1", "CONSENT_WEBHOOK_WORKER": "off"}
    with servers.serving(tmp_path_factory.mktemp("fuzz"), workers=1, env=env) as live:
        yield live


def role_headers(server: servers.Server, role: str) -> dict[str, str]:
    """A fresh app tenant with one subject's decisions; the role's headers."""
    if role == "operator":
        return bearer(OPERATOR_TOKEN)
    tenant = server.api().new_app_tenant(f"fuzz {role}")
    tenant.record(SUBJECT, decision("personalized_push"), decision("marketing_sms", False), token=tenant.writer,
                  expect=201)
    if role == "revoker":
        return bearer(tenant.admin)
    return tenant.roles(SUBJECT)[role]


@pytest.mark.parametrize("role", list(PROFILES[PROFILE]))
def test_schemathesis_finds_nothing(server, role, tmp_path):
    run = PROFILES[PROFILE][role]
    command = [sys.executable, "-m", "schemathesis.cli",
               "--config-file", str(Path(__file__).with_name("schemathesis.toml")),
               "run", server.url + "/v1/openapi.yaml",
               "--max-examples", str(run.examples), "--seed", str(SEED), "--phases", run.phases,
               "--request-timeout", "20", "--no-color"]
    for name, value in role_headers(server, role).items():
        command += ["-H", f"{name}: {value}"]
    for op in run.include:
        command += ["--include-operation-id", op]
    for op in run.exclude:
        command += ["--exclude-operation-id", op]
    env = {**os.environ, "PYTHONPATH": str(servers.REPO), "SCHEMATHESIS_HOOKS": "tests.fuzz.hooks",
           "CONSENT_FUZZ_PURPOSES": ",".join(APP_PURPOSES), "CONSENT_FUZZ_POLICY": POLICY,
           "CONSENT_FUZZ_SUBJECT": SUBJECT}
    result = subprocess.run(command, cwd=servers.REPO, env=env, capture_output=True, text=True, timeout=1800)
    report = result.stdout + result.stderr
    (tmp_path / f"schemathesis-{role}.txt").write_text(report)
    summary = report[report.rfind("Test cases:"):].strip()
    print(f"\n[{role}] {summary}")
    assert result.returncode == 0, report[-12000:]
    assert "Tested:" in report
    log = server.log.read_text(errors="replace")
    assert "Traceback" not in log and "unhandled error" not in log, log[-5000:]


def test_the_server_never_logged_a_secret(server):
    """Runs last in this module: the server's log after every role's run holds no credential."""
    text = server.log.read_text(errors="replace")
    assert OPERATOR_TOKEN not in text
    for marker in ("sk_", "pk_", "sts_"):
        assert marker not in text, f"{marker}... found in the server log"
