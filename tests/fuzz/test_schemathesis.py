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
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.support.openapi_contract import ROOT
from tests.support.world import OPERATOR_TOKEN, POLICY, PURPOSES, bearer, decisions, make_tenant, seed_catalog

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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    def __init__(self, workdir: Path):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "server.log"
        env = {**os.environ, "PYTHONPATH": str(ROOT), "CONSENT_ADMIN_TOKEN": OPERATOR_TOKEN,
               "CONSENT_DATABASE_URL": f"sqlite:///{workdir / 'consent.db'}"}
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "consent_api.cli", "serve", "--host", "127.0.0.1",
                 "--port", str(self.port), "--workers", "1"],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"consent-api serve exited:\n{self.log.read_text()[-3000:]}")
            try:
                if requests.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.1)  # polling for start-up, not timing a result
        raise RuntimeError("consent-api serve did not become ready")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # the session holds only this server and its workers
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def post(self, path, body, headers):
        return requests.post(self.url + path, json=body, headers=headers, timeout=10)

    def put(self, path, body, headers):
        return requests.put(self.url + path, json=body, headers=headers, timeout=10)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    live = LiveServer(tmp_path_factory.mktemp("fuzz"))
    try:
        live.wait_ready()
        yield live
    finally:
        live.stop()


def role_headers(server: LiveServer, role: str) -> dict[str, str]:
    """A fresh tenant with a catalog and one subject with decisions; the role's headers."""
    if role == "operator":
        return bearer(OPERATOR_TOKEN)
    tenant = make_tenant(server.post, f"fuzz {role}")
    seed_catalog(server.put, server.post, tenant)
    recorded = server.post(f"/v1/subjects/{SUBJECT}/consents",
                           decisions(("personalized_push", True), ("marketing_sms", False)), bearer(tenant.writer))
    assert recorded.status_code == 201, recorded.text
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
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SCHEMATHESIS_HOOKS": "tests.fuzz.hooks",
           "CONSENT_FUZZ_PURPOSES": ",".join(PURPOSES), "CONSENT_FUZZ_POLICY": POLICY,
           "CONSENT_FUZZ_SUBJECT": SUBJECT}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
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
