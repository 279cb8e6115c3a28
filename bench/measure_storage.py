"""Bytes per event, per subject and per index entry, measured on the stores' real formats.

Events are made by the service layer (consents.record, record_prompts, withdraw_all), on the
demo tenant's catalog, with the evidence the HTTP layer adds (IPv4 /24, User-Agent hash) and
an Idempotency-Key on most writes, as apps send them. Then:

- MongoDB: every stored event and subject document, as MongoStore writes it (mongomock keeps
  the exact document, ObjectId _id included), is encoded with ``bson.encode``; block compression
  is measured with snappy (WiredTiger's default) and zstd over 32 KiB runs of documents.
- Index entries: each index key of INDEXES is sized as WiredTiger's KeyString stores it (type
  byte + value + terminator per field) plus an 8-byte RecordId, before prefix compression.
- SQLite: a seeded file (synchronous=OFF while seeding only; the format is the same) is
  measured per table and index with the dbstat virtual table.

    python bench/measure_storage.py [--subjects 1500] [--sqlite-subjects 5000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import bson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from consent_api.domain.clock import FixedClock  # noqa: E402
from consent_api.domain.evidence import evidence  # noqa: E402
from consent_api.security.signing_keys import KeyRing  # noqa: E402
from consent_api.services import consents  # noqa: E402
from consent_api.services.consents import Decision, Submission  # noqa: E402
from consent_api.services.demo import seed_demo  # noqa: E402
from consent_api.services.deps import Deps  # noqa: E402
from consent_api.services.idempotency import Claim  # noqa: E402
from consent_api.store.mongo import INDEXES  # noqa: E402
from consent_api.store.open import open_store  # noqa: E402
from consent_api.store.sqlite import SQLiteStore  # noqa: E402

BANNER = ["personalized_push", "marketing_sms", "marketing_email", "analytics_cookies", "third_party_sdk"]
PERMISSIONS = ["location", "photo_album", "contacts", "phone_number"]
USER_AGENTS = ["Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
               "okhttp/4.12.0 (Android 15; Xiaomi 14)", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0"]


def workload(store, subjects: int, seed: int = 7) -> str:
    """A tenant's first weeks: banner decisions, permission prompts and answers, withdrawals."""
    rng = random.Random(seed)
    clock = FixedClock("2026-03-01T08:00:00Z")
    deps = Deps(store, clock, KeyRing(store, clock))
    tenant_id, *_ = seed_demo(deps)
    for n in range(subjects):
        subject = f"u{rng.randrange(10**11, 10**12)}"  # a 12-character app user id
        channel = rng.choice(["ios", "android", "web", "miniprogram"])
        source = {"channel": channel, "collection_point": rng.choice(["first_launch", "settings", "banner"]),
                  "ui_text_sha256": f"{rng.getrandbits(256):064x}", "sdk_version": "3.2.1"}
        ev = evidence(f"203.0.{rng.randrange(256)}.{rng.randrange(256)}", rng.choice(USER_AGENTS))

        def submit(decisions: list[Decision]) -> None:
            consents.record(deps, tenant_id, subject, Submission(
                decisions, "2026-01", source, "zh-CN", evidence=ev,
                claim=Claim("bench", str(uuid.UUID(int=rng.getrandbits(128))))))  # the key, no answer kept

        submit([Decision(p, rng.random() < 0.6) for p in BANNER])
        clock.advance(minutes=rng.randrange(1, 600))
        asked = rng.sample(PERMISSIONS, 2)
        consents.record_prompts(deps, tenant_id, subject, asked, source, "zh-CN", ev, None,
                                {p: "not_determined" for p in asked})
        submit([Decision(p, rng.random() < 0.7, os_permission="granted") for p in asked])
        clock.advance(hours=rng.randrange(1, 400))
        if rng.random() < 0.3:
            consents.withdraw_all(deps, tenant_id, subject, source, "zh-CN", ev, None)
        elif rng.random() < 0.5:
            submit([Decision("marketing_sms", False)])
        clock.advance(minutes=rng.randrange(1, 60))
    return tenant_id


# --- MongoDB documents and index keys ------------------------------------------------------------

def keystring_bytes(value: Any) -> int:
    """Roughly what WiredTiger's KeyString format spends on one indexed value."""
    if value is None or isinstance(value, bool):
        return 1
    if isinstance(value, int):
        return 1 + max(1, (value.bit_length() + 7) // 8)
    if isinstance(value, str):
        return 2 + len(value.encode("utf-8"))
    if isinstance(value, datetime):
        return 9
    if isinstance(value, bson.ObjectId):
        return 13
    if isinstance(value, list):  # multikey: one entry per element, sized by the caller
        raise TypeError
    return 2 + len(bson.encode({"v": value}))


def index_entry_sizes(docs: list[dict], keys: list[tuple[str, int]]) -> list[int]:
    sizes = []
    for doc in docs:
        fixed = [doc.get(name) for name, _ in keys]
        multi = [i for i, v in enumerate(fixed) if isinstance(v, list)]
        rows = [fixed] if not multi else [fixed[:multi[0]] + [v] + fixed[multi[0] + 1:]
                                          for v in fixed[multi[0]]]
        sizes += [sum(keystring_bytes(v) for v in row) + 8 for row in rows]  # + RecordId
    return sizes


def compressed_ratio(docs: list[dict], block: int = 32 * 1024) -> dict[str, float]:
    try:
        import cramjam
    except ImportError:  # pragma: no cover - optional
        return {}
    raw = snappy = zstd = 0
    chunk = b""
    blobs = [bson.encode(d) for d in docs]
    for blob in blobs + [None]:
        if blob is not None and len(chunk) + len(blob) <= block:
            chunk += blob
            continue
        if chunk:
            raw += len(chunk)
            snappy += len(bytes(cramjam.snappy.compress_raw(chunk)))
            zstd += len(bytes(cramjam.zstd.compress(chunk, level=6)))
        chunk = blob or b""
    return {"snappy": round(raw / snappy, 2), "zstd": round(raw / zstd, 2)}


def summary(values: list[int]) -> dict[str, float]:
    ordered = sorted(values)
    return {"n": len(values), "mean": round(statistics.fmean(values), 1),
            "p50": ordered[len(ordered) // 2], "p95": ordered[int(len(ordered) * 0.95)],
            "max": ordered[-1]}


def measure_mongo(subjects: int) -> dict[str, Any]:
    store = open_store("mongomock://measure")
    workload(store, subjects)
    result: dict[str, Any] = {}
    for collection in ("events", "subjects"):
        docs = list(store.db[collection].find({}))
        result[collection] = {
            "bson_bytes": summary([len(bson.encode(d)) for d in docs]),
            "compression": compressed_ratio(docs),
            "indexes": {"_id_": summary(index_entry_sizes(docs, [("_id", 1)]))},
        }
        for name, keys, options in INDEXES:
            if name == collection:
                result[collection]["indexes"][options["name"]] = summary(index_entry_sizes(docs, keys))
    result["events_per_subject"] = round(result["events"]["bson_bytes"]["n"] / subjects, 2)
    actions: dict[str, int] = {}
    for doc in store.db["events"].find({}, {"action": 1}):
        actions[doc["action"]] = actions.get(doc["action"], 0) + 1
    result["actions"] = actions
    return result


# --- SQLite file --------------------------------------------------------------------------------------

def measure_sqlite(subjects: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/measure.db"
        store = SQLiteStore(path)
        store._conn().execute("PRAGMA synchronous=OFF")  # seeding speed only; the format is the same
        workload(store, subjects)
        conn = store._conn()
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        events = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        rows = conn.execute("SELECT name, SUM(pgsize), SUM(payload) FROM dbstat GROUP BY name").fetchall()
        sizes = {name: {"bytes": size, "payload": payload} for name, size, payload in rows}
        file_bytes = Path(path).stat().st_size
        store.close()
    index_of = {"sqlite_autoindex_events_1": "events (PK)", "events_export": "events_export",
                "sqlite_autoindex_subjects_1": "subjects (PK)", "subjects_ref": "subjects_ref",
                "grants": "grants", "sqlite_autoindex_grants_1": "grants (PK)"}
    return {
        "subjects": subjects, "events": events, "file_bytes": file_bytes,
        "bytes_per_event_whole_file": round(file_bytes / events, 1),
        "tables": {index_of.get(k, k): v for k, v in sorted(sizes.items()) if v["bytes"] > 4096},
        "event_table_and_indexes_per_event": round(
            sum(v["bytes"] for k, v in sizes.items() if k.startswith(("events", "sqlite_autoindex_events")))
            / events, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subjects", type=int, default=1500, help="subjects written to mongomock")
    parser.add_argument("--sqlite-subjects", type=int, default=5000, help="subjects written to SQLite")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args(argv)
    figures = {"measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "mongodb": measure_mongo(args.subjects), "sqlite": measure_sqlite(args.sqlite_subjects)}
    text = json.dumps(figures, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
