"""A realistic population, written through the store port in bulk (never through HTTP).

Each subject has ~3 decisions on distinct purposes of a 5-purpose catalog (about 60% grants),
recorded over the past year, chained and projected by the domain code itself, so the ledger
verifies and ``rebuild-state --check`` finds nothing to fix. Events are built in worker
processes and loaded with ``bench.bulk.load``.
"""

from __future__ import annotations

import multiprocessing
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

from bench import bulk
from consent_api.domain.clock import FixedClock
from consent_api.domain.ledger import seal
from consent_api.domain.model import SubjectRecord
from consent_api.domain.projection import apply_events
from consent_api.security.signing_keys import KeyRing
from consent_api.services import catalog, tenants
from consent_api.services.deps import Deps
from consent_api.store.sqlite import SQLiteStore

POLICY = "2026-01"
PURPOSES = {
    "personalized_push": {"kind": "processing", "title": {"zh-CN": "个性化推送", "en": "Personalised push"}},
    "location": {"kind": "device_permission", "title": {"zh-CN": "位置信息", "en": "Location"}},
    "marketing_sms": {"kind": "marketing", "title": {"zh-CN": "营销短信", "en": "Marketing SMS"}},
    "analytics": {"kind": "processing", "title": {"zh-CN": "使用统计", "en": "Usage analytics"}},
    "ad_personalization": {"kind": "third_party", "title": {"zh-CN": "个性化广告", "en": "Ad personalisation"}},
}
CHANNELS = ("ios", "android", "web")
EVENTS_PER_SUBJECT = 3
GRANT_SHARE = 0.6
CHUNK = 10_000
START = datetime(2025, 11, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Population:
    tenant_id: str
    admin_key: str
    subjects: int
    events: int


def subject_id(n: int) -> str:
    return f"u{n:08d}"


def seed(path: str, subjects: int, *, processes: int = 2, purposes: dict[str, dict] | None = None) -> Population:
    """Create the tenant, its catalog (PURPOSES unless given) and `subjects` subjects in the
    SQLite file at path; the per-day counters are loaded with them."""
    purposes = purposes or PURPOSES
    store = SQLiteStore(path)
    clock = FixedClock(START)
    deps = Deps(store, clock, KeyRing(store, clock))
    tenant, admin = tenants.create_tenant(deps, "Bench")
    for key, data in purposes.items():
        catalog.put_purpose(deps, tenant.id, key, data)
    catalog.publish_policy(deps, tenant.id, {"version": POLICY, "effective_at": START})
    validity = tuple((key, data.get("validity_days")) for key, data in purposes.items())
    chunks = [(tenant.id, start, min(start + CHUNK, subjects), validity) for start in range(0, subjects, CHUNK)]
    if processes > 1 and len(chunks) > 1:
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            events = bulk.load(path, pool.imap(_rows, chunks))
    else:
        events = bulk.load(path, map(_rows, chunks))
    store.close()
    return Population(tenant.id, admin.secret, subjects, events)


Chunk = tuple[str, int, int, tuple[tuple[str, float | None], ...]]  # tenant, start, stop, validity


def _rows(chunk: Chunk) -> bulk.Rows:
    return bulk.rows(chunk[0], _ledgers(chunk), dict(chunk[3]))


def _ledgers(chunk: Chunk) -> list[tuple[SubjectRecord, list[dict]]]:
    """Drafts in the shape consents.record writes them, sealed and projected by the domain."""
    tenant_id, start, stop, validity = chunk
    rng = random.Random(start)
    keys = [key for key, _ in validity]
    base = START.timestamp()
    out = []
    for n in range(start, stop):
        record = SubjectRecord(subject_id=subject_id(n), subject_ref="sr_%032x" % rng.getrandbits(128))
        at = base + rng.randrange(300 * 86400)
        drafts = []
        for key in rng.sample(keys, EVENTS_PER_SUBJECT):
            at += rng.randrange(1, 86400)
            ts = datetime.fromtimestamp(at, timezone.utc).isoformat()[:19] + ".000000Z"
            drafts.append({
                "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "tenant_id": tenant_id, "purpose": key,
                "action": "grant" if rng.random() < GRANT_SHARE else "deny",
                "policy_version": POLICY, "occurred_at": ts, "recorded_at": ts,
                "source": {"channel": rng.choice(CHANNELS), "collection_point": "onboarding",
                           "ui_text_sha256": None, "sdk_version": "3.2.1"},
                "locale": "zh-CN", "separate": False,
                "actor": {"type": "self", "id": None, "reason": None},
                "age_band": "adult", "os_permission": None,
                "evidence": {"ip_prefix": "203.0.113.0/24",
                             "user_agent_sha256": "%064x" % rng.getrandbits(256)},
                "idempotency_key": None,
            })
        events = seal(drafts, record)
        out.append((apply_events(record, events), events))
    return out
