"""`python -m bench --peer fides`: Ethyca Fides measured in the same run, by the peer's own scripts
(a directory with env.sh, setup.sh, stop.sh and bench.lua; see its README).

Fides must have been installed once with the peer's ``setup.sh`` (apt PostgreSQL and Redis, pip
Fides; several minutes). When it is not running, the bench starts it with ``setup.sh
--no-install`` and stops it afterwards with ``stop.sh``; one it found running it leaves running.
Then, with the same wrk and connections as our rows: its consent write (PATCH a consent
request's preferences, alternating opt-in and opt-out as the peer's bench does) and its two
reads of one user's consent (by consent request id, unauthenticated; by e-mail with the admin
token), while the summed PSS of Fides, PostgreSQL and Redis is sampled.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bench import loadgen, scenarios

REPO = Path(__file__).resolve().parents[1]
EMAIL = "bench-user@example.com"
WRITE = '{"consent":[{"data_use":"marketing.advertising","opt_in":true}]}'
WRITE_ALT = '{"consent":[{"data_use":"marketing.advertising","opt_in":false}]}'
SETTINGS = ("FIDES_PEER_DIR", "FIDES_VERSION", "FIDES_URL", "TOKEN_FILE", "FIDES_PIDFILE", "PGDATA",
            "REDIS_DIR", "VENV")


def default_scripts() -> Path | None:
    """The peer's scripts beside the repository (../shared/peers/fides), or beside its parent
    for a checkout one level further down."""
    for base in (REPO.parent, REPO.parent.parent):
        candidate = base / "shared" / "peers" / "fides"
        if (candidate / "env.sh").is_file():
            return candidate
    return None


@dataclass
class Peer:
    scripts: Path
    env: dict[str, str]
    started_here: bool = False

    @property
    def url(self) -> str:
        return self.env["FIDES_URL"]

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=5) as response:
                return response.status == 200
        except OSError:
            return False

    def pids(self) -> list[int]:
        """Fides (uvicorn and its children), PostgreSQL (postmaster and its backends), Redis."""
        roots = []
        for pidfile in (self.env["FIDES_PIDFILE"], self.env["PGDATA"] + "/postmaster.pid",
                        self.env["REDIS_DIR"] + "/redis.pid"):
            try:
                roots.append(int(Path(pidfile).read_text().split()[0]))
            except (OSError, ValueError, IndexError):
                continue
        return _descendants(roots)

    def token(self) -> str:
        return Path(self.env["TOKEN_FILE"]).read_text().strip()

    def call(self, method: str, path: str, body: str | None = None, token: str | None = None) -> dict:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(self.url + path, data=body.encode() if body else None,
                                         method=method, headers=headers)
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"{}")


def open_peer(scripts: Path) -> Peer:
    """The peer's settings (env.sh), Fides started when it is installed and not running."""
    shown = "; ".join(f'echo "{name}=${name}"' for name in SETTINGS)
    out = subprocess.run(["bash", "-c", f'. "{scripts}/env.sh"; {shown}'], capture_output=True, text=True,
                         check=True, timeout=30).stdout
    peer = Peer(scripts, dict(line.split("=", 1) for line in out.splitlines() if "=" in line))
    if peer.healthy():
        return peer
    if not Path(peer.env["VENV"], "bin", "uvicorn").exists():
        raise SystemExit(f"Fides is not installed: run `sudo bash {scripts}/setup.sh` once (several minutes)")
    print(f"bench: starting Fides with {scripts}/setup.sh --no-install", file=sys.stderr)
    subprocess.run(["bash", str(scripts / "setup.sh"), "--no-install"], check=True, timeout=600,
                   stdout=subprocess.DEVNULL)
    peer.started_here = True
    return peer


def close_peer(peer: Peer) -> None:
    if peer.started_here:
        subprocess.run(["bash", str(peer.scripts / "stop.sh")], timeout=120, stdout=subprocess.DEVNULL)


def measure(peer: Peer, args) -> dict:
    """Fides's write and read rates and its memory, measured as our rows are."""
    token = peer.token()
    consent_request = peer.call("POST", "/api/v1/consent-request", json.dumps({"identity": {"email": EMAIL}}))
    cid = consent_request["consent_request_id"]
    peer.call("PATCH", f"/api/v1/consent-request/{cid}/preferences", WRITE)
    version = peer.call("GET", "/health").get("version")
    runs = {
        "write": ("PATCH consent (write)", f"/api/v1/consent-request/{cid}/preferences",
                  {"WRK_METHOD": "PATCH", "WRK_BODY": WRITE, "WRK_BODY_ALT": WRITE_ALT}),
        "read_by_id": ("GET consent by request id", f"/api/v1/consent-request/{cid}/preferences",
                       {"WRK_METHOD": "GET"}),
        "read_by_email": ("POST consent by e-mail (admin token)", "/api/v1/consent-request/preferences",
                          {"WRK_METHOD": "POST", "WRK_TOKEN": token, "WRK_BODY": json.dumps({"email": EMAIL})}),
    }
    result: dict = {"version": version, "rows": {}}
    with scenarios.peak_pss(peer.pids) as memory:
        for name, (what, path, env) in runs.items():
            if args.warmup:
                _wrk(peer, path, env, args.warmup, args.connections)
            row = _wrk(peer, path, env, args.duration, args.connections)
            result["rows"][name] = {"label": what, "connections": args.connections, **row}
            print(f"[fides] {what}: {row['rps']:,.0f} req/s, p99 {row['p99_ms']:.1f} ms, "
                  f"errors {row['errors']}", file=sys.stderr)
    result["pss_mib"], result["pss_anon_mib"] = memory["peak_mib"], memory["anon_mib"]
    result["processes"] = len(peer.pids())
    return result


def _wrk(peer: Peer, path: str, env: dict[str, str], seconds: float, connections: int) -> dict:
    argv = [loadgen.require_wrk(), "-t2", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
            "-s", str(peer.scripts / "bench.lua"), peer.url + path]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60,
                          env={**os.environ, **env})
    line = next((line for line in done.stdout.splitlines() if line.startswith("RESULT ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk against Fides failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    fields = dict(part.split("=", 1) for part in line.split()[1:])
    return {"rps": float(fields["rps"]), "p50_ms": float(fields["p50_ms"]), "p99_ms": float(fields["p99_ms"]),
            "requests": int(fields["requests"]), "errors": int(fields["non2xx"]) + int(fields["sock_err"])}


def _descendants(roots: list[int]) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [r for r in roots if os.path.exists(f"/proc/{r}")]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found
