"""The production files: docker-compose.yml validates and wires the replica set as README says,
and the Dockerfile installs the project exactly as CI does (`pip install .`, `consent-api serve`).

There is no Docker engine here: `docker-compose config` (Debian's docker-compose, which .ci/run
installs) validates and resolves the file without one; the image itself is checked by building
the wheel from exactly the files the Dockerfile copies, the way its `pip install .` does."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pymongo
import pytest
import yaml

from consent_api.store.mongo import MongoStore
from consent_api.store.open import open_store

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "compose-test-operator-token"


def compose(*args: str, token: str | None = TOKEN) -> subprocess.CompletedProcess:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail("docker-compose is missing: apt-get install docker-compose (.ci/run does)")
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}
    if token is not None:
        env["CONSENT_ADMIN_TOKEN"] = token
    return subprocess.run([binary, "-f", str(ROOT / "docker-compose.yml"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def services() -> dict:
    result = compose("config")
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)["services"]


def test_the_compose_file_validates():
    result = compose("config", "-q")
    assert result.returncode == 0, result.stderr


def test_the_operator_token_must_come_from_the_environment():
    result = compose("config", "-q", token=None)
    assert result.returncode != 0
    assert "set CONSENT_ADMIN_TOKEN" in result.stderr


def test_mongodb_runs_as_a_three_member_replica_set_with_volumes_and_health_checks(services):
    volumes = set()
    for name in ("mongo1", "mongo2", "mongo3"):
        node = services[name]
        assert node["command"][:3] == ["mongod", "--replSet", "rs0"]
        assert "ping" in " ".join(node["healthcheck"]["test"])
        [mount] = node["volumes"]  # docker-compose 1.29 prints the short form: source:target:mode
        source, target, _ = mount.split(":")
        assert target == "/data/db"
        volumes.add(source)
    assert volumes == set(yaml.safe_load(compose("config").stdout)["volumes"]) == {
        "mongo1-data", "mongo2-data", "mongo3-data"}

    init = services["mongo-init"]
    script = init["entrypoint"][-1]
    assert init["depends_on"] == {n: {"condition": "service_healthy"} for n in ("mongo1", "mongo2", "mongo3")}
    assert init["restart"] == "no"
    assert 'rs.initiate({_id: "rs0"' in script
    assert re.findall(r'host: "(mongo\d):27017"', script) == ["mongo1", "mongo2", "mongo3"]
    assert '"PRIMARY").length === 1' in script and '"SECONDARY").length === 2' in script


def test_the_api_waits_for_the_replica_set_and_its_indexes(services):
    migrate, api = services["migrate"], services["api"]
    assert migrate["command"] == ["consent-api", "migrate"]
    assert migrate["depends_on"] == {"mongo-init": {"condition": "service_completed_successfully"}}
    assert api["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}
    assert api["command"] == ["consent-api", "serve"]
    for built in (migrate, api):
        assert Path(built["build"]["context"]) == ROOT
    assert "/readyz" in " ".join(api["healthcheck"]["test"])
    assert api["environment"]["CONSENT_ADMIN_TOKEN"] == TOKEN
    assert api["stop_grace_period"] == "30s"


def test_webhooks_and_the_request_tick_run_in_the_worker_service_alone(services):
    worker, api = services["worker"], services["api"]
    assert worker["command"] == ["consent-api", "worker"]
    assert worker["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}
    assert Path(worker["build"]["context"]) == ROOT and worker["restart"] == "unless-stopped"
    assert worker["environment"]["CONSENT_DATABASE_URL"] == api["environment"]["CONSENT_DATABASE_URL"]
    assert api["environment"]["CONSENT_WORKER"] == "off"
    assert not {"CONSENT_WORKER", "CONSENT_WEBHOOK_WORKER"} & set(worker["environment"])
    assert worker["environment"].get("CONSENT_REQUEST_TICK_SECONDS") != "0"
    assert worker["stop_grace_period"] == "20s"  # more than the 10 s a send may take


def test_the_database_url_names_every_member_with_majority_writes(services):
    url = services["api"]["environment"]["CONSENT_DATABASE_URL"]
    assert services["migrate"]["environment"]["CONSENT_DATABASE_URL"] == url
    parts = urlsplit(url)
    assert parts.netloc == "mongo1:27017,mongo2:27017,mongo3:27017" and parts.path == "/consent_api"
    assert parse_qs(parts.query) == {"replicaSet": ["rs0"], "w": ["majority"]}

    store = open_store(url)  # pymongo parses it without connecting

    assert isinstance(store, MongoStore) and store.db.name == "consent_api"
    client: pymongo.MongoClient = store._client
    assert client.options.replica_set_name == "rs0"
    assert client.options.write_concern.document == {"w": "majority"}
    assert client.options.retry_writes is True
    store.close()


def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def test_the_image_installs_and_starts_like_ci_and_the_readme():
    text = dockerfile()
    [run] = [line for line in text.splitlines() if line.startswith("RUN ")]
    assert run.startswith("RUN pip install . &&")  # the project's own dependencies, nothing added
    assert 'CMD ["consent-api", "serve"]' in text
    ci = (ROOT / ".ci" / "run").read_text()
    assert ".venv/bin/pip install -q -e '.[test]'" in ci and "docker-compose" in ci
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"consent-api": "consent_api.cli:main"}


def test_the_files_the_dockerfile_copies_build_the_package_with_its_dependencies(tmp_path):
    context = tmp_path / "context"
    context.mkdir()
    for line in dockerfile().splitlines():
        if line.startswith("COPY "):
            *sources, _ = line.split()[1:]
            for source in sources:
                origin = ROOT / source
                copy = shutil.copytree if origin.is_dir() else shutil.copy2
                copy(origin, context / source, **({"ignore": shutil.ignore_patterns("__pycache__")}
                                                   if origin.is_dir() else {}))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "out"),
                            str(context)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]

    [wheel] = (tmp_path / "out").glob("consent_api-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = archive.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
        metadata = archive.read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert "consent-api = consent_api.cli:main" in entry_points
    assert "consent_api/web/static/consent.js" in names and "consent_api/web/metrics.py" in names
    assert {f"consent_api/web/static/consent-{part}.js" for part in ("panel", "app")} <= set(names)
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    required = [line.split(": ", 1)[1] for line in metadata.splitlines()
                if line.startswith("Requires-Dist: ") and "extra ==" not in line]
    assert {re.split(r"[<>=\[ ]", r)[0] for r in required} == {re.split(r"[<>=\[ ]", d)[0] for d in declared}
    assert any(d.startswith("prometheus-client") for d in declared)
