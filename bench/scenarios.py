"""What the bench asks of consent_api: the requests of each scenario, drawn at random from the
seeded population, and the streamed audit export."""

from __future__ import annotations

import contextlib
import http.client
import json
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from bench.loadgen import MIXED, SCRIPT
from bench.seed import POLICY, PURPOSES, Population, subject_id
from consent_api.services.pages import encode_cursor

Request = tuple[str, str, str]  # method, path, one-line JSON body ("" for none)
KEYS = list(PURPOSES)


@dataclass(frozen=True)
class Scenario:
    name: str
    label: str
    build: Callable[[Population, random.Random], list[Request]]
    connections: int | None = None  # None: the run's --connections
    script: Path = SCRIPT  # the wrk script; MIXED times checks (GET) and writes (POST) apart


def _subjects(pop: Population, rng: random.Random, n: int) -> list[str]:
    return [subject_id(rng.randrange(pop.subjects)) for _ in range(n)]


def check(pop, rng):
    return [("GET", f"/v1/subjects/{s}/consents/{rng.choice(KEYS)}", "") for s in _subjects(pop, rng, 20_000)]


def state(pop, rng):
    return [("GET", f"/v1/subjects/{s}/consents", "") for s in _subjects(pop, rng, 20_000)]


def _decision(rng: random.Random) -> str:
    return json.dumps({
        "decisions": [{"purpose": rng.choice(KEYS), "granted": rng.random() < 0.6}],
        "policy_version": POLICY, "locale": "zh-CN",
        "source": {"channel": rng.choice(("ios", "android")), "collection_point": "settings"},
    }, separators=(",", ":"))


def write(pop, rng):
    return [("POST", f"/v1/subjects/{s}/consents", _decision(rng)) for s in _subjects(pop, rng, 20_000)]


MIXED_WRITE_SHARE = 0.1


def mixed(pop, rng):
    """Single-purpose checks with decision writes among them, one in ten, in random order."""
    return [("POST", f"/v1/subjects/{s}/consents", _decision(rng)) if rng.random() < MIXED_WRITE_SHARE
            else ("GET", f"/v1/subjects/{s}/consents/{rng.choice(KEYS)}", "")
            for s in _subjects(pop, rng, 20_000)]


def history(pop, rng):
    return [("GET", f"/v1/subjects/{s}/history", "") for s in _subjects(pop, rng, 20_000)]


def bulk_check(pop, rng):
    return [("POST", "/v1/checks", json.dumps({"purpose": rng.choice(KEYS),
                                               "subject_ids": _subjects(pop, rng, 1000)},
                                              separators=(",", ":")))
            for _ in range(50)]


def audience(pop, rng):
    return [("GET", f"/v1/audiences/{rng.choice(KEYS)}?limit=100&cursor="
                    f"{encode_cursor(subject_id(rng.randrange(pop.subjects)))}", "")
            for _ in range(5_000)]


SCENARIOS = {s.name: s for s in (
    Scenario("check", "check one purpose", check),
    Scenario("state", "full state read", state),
    Scenario("history", "history of one subject", history),
    Scenario("audience", "audience page (100 ids)", audience),
    Scenario("bulk_check", "bulk check, 1,000 ids", bulk_check, connections=1),
    Scenario("write", "decision write (durable)", write),
    Scenario("mixed", "mixed: 90% check, 10% write", mixed, script=MIXED),
)}


def pss_kib(pids: Iterable[int]) -> tuple[int, int]:
    """The summed PSS of these processes, and the anonymous part of it (/proc/PID/smaps_rollup):
    shared pages are split among the processes that map them, so the sum is what the group as a
    whole occupies. The rest is file pages, mostly the database mapped by SQLite (page cache)."""
    total = anon = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as fh:
                fields = dict(line.split(":", 1) for line in fh if line[:4] in ("Pss:", "Pss_"))
        except OSError:  # gone meanwhile
            continue
        total += int(fields.get("Pss", "0 kB").split()[0])
        anon += int(fields.get("Pss_Anon", "0 kB").split()[0])
    return total, anon


@contextlib.contextmanager
def peak_pss(pids: Callable[[], Iterable[int]], every_s: float = 0.5) -> Iterator[dict[str, float]]:
    """Samples the summed PSS of pids() every every_s seconds while the block runs; the dict it
    yields holds, once the block is over, the peak in MiB ("peak_mib") and the anonymous part of
    that sample ("anon_mib")."""
    found = {"peak_mib": 0.0, "anon_mib": 0.0}
    stop = threading.Event()

    def sample() -> None:
        while True:
            total, anon = pss_kib(pids())
            if total / 1024 > found["peak_mib"]:
                found.update(peak_mib=round(total / 1024, 1), anon_mib=round(anon / 1024, 1))
            if stop.wait(every_s):
                return

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield found
    finally:
        stop.set()
        sampler.join()


@dataclass(frozen=True)
class ExportResult:
    status: int
    events: int
    bytes: int
    seconds: float
    complete: bool
    rss_growth_mib: float  # the largest growth of any server process: VmRSS (file pages too)
    anon_growth_mib: float  # and RssAnon (what the process allocated)

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    @property
    def mib_per_s(self) -> float:
        return self.bytes / 2**20 / self.seconds if self.seconds else 0.0


def export(url: str, token: str, memory: Callable[[], dict[int, tuple[int, int]]],
           max_seconds: float) -> ExportResult:
    """Stream GET /v1/audit/events (NDJSON) for at most max_seconds, sampling server memory."""
    parts = urlsplit(url)
    before = memory()
    peak = dict(before)
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.05):
            for pid, (rss, anon) in memory().items():
                old = peak.get(pid, (0, 0))
                peak[pid] = (max(old[0], rss), max(old[1], anon))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    events = size = 0
    complete = False
    started = time.perf_counter()
    try:
        conn.request("GET", "/v1/audit/events?format=ndjson", headers={"Authorization": f"Bearer {token}"})
        response = conn.getresponse()
        if response.status != 200:
            response.read()
            return ExportResult(response.status, 0, 0, 0.0, False, 0.0, 0.0)
        while True:
            chunk = response.read1(1 << 20)
            if not chunk:
                complete = True
                break
            events += chunk.count(b"\n")
            size += len(chunk)
            if time.perf_counter() - started > max_seconds:
                break
        seconds = time.perf_counter() - started
    finally:
        conn.close()
        stop.set()
        sampler.join()

    def growth(i: int) -> float:
        return round(max((peak[pid][i] - before[pid][i] for pid in peak if pid in before), default=0) / 1024, 1)

    return ExportResult(200, events, size, seconds, complete, growth(0), growth(1))
