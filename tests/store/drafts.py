"""Builders for store tests: draft events and catalog entries with defaults, overridable by keyword."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from typing import Any

from consent_api.domain.clock import format_ts
from consent_api.domain.model import (
    ApiKey,
    Kind,
    PolicyVersion,
    Purpose,
    SubjectTokenKey,
    Tenant,
    Vendor,
)
from consent_api.store.port import Appended, Plan, Store

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=timezone.utc)
# Idempotency records expire by the wall clock on MongoDB (its TTL monitor, and mongomock's
# imitation of it), so tests of them claim near the real time rather than at T0.
NOW = datetime.now(timezone.utc).replace(microsecond=0)
_ids = itertools.count(1)


def at(minutes: float = 0) -> datetime:
    """A moment T0 + minutes."""
    return T0 + timedelta(minutes=minutes)


def fresh(minutes: float = 0) -> datetime:
    """A moment NOW + minutes: for idempotency claims, which expire by the wall clock."""
    return NOW + timedelta(minutes=minutes)


def ts(minutes: float = 0) -> str:
    """at(minutes) as the RFC 3339 string events carry."""
    return format_ts(at(minutes))


def draft(purpose: str | None = "push", action: str = "grant", *, tenant_id: str = "t1",
          minutes: float = 0, **fields: Any) -> dict[str, Any]:
    """A draft event as a service's plan returns it (no subject_ref, seq or hashes yet)."""
    recorded = ts(minutes)
    return {
        "event_id": f"ev_{next(_ids):06d}",
        "tenant_id": tenant_id,
        "purpose": purpose,
        "action": action,
        "policy_version": "2026-01",
        "occurred_at": recorded,
        "recorded_at": recorded,
        "source": {"channel": "ios", "collection_point": "设置页", "ui_text_sha256": None,
                   "sdk_version": "3.2.0"},
        "locale": "zh-CN",
        "separate": False,
        "actor": {"type": "self", "id": None, "reason": None},
        "age_band": None,
        "os_permission": None,
        "evidence": {"ip_prefix": "203.0.113.0/24", "user_agent_sha256": "ab" * 32},
        "idempotency_key": None,
        **fields,
    }


def plan_of(*drafts: dict[str, Any]) -> Plan:
    """A plan that ignores the record and returns these drafts."""
    return lambda record: [dict(d) for d in drafts]


def append(store: Store, tenant_id: str, subject_id: str, *drafts: dict[str, Any],
           erase: bool = False) -> Appended:
    return store.append(tenant_id, subject_id, plan_of(*drafts), erase=erase)


def tenant(tenant_id: str = "t1", name: str = "Acme") -> Tenant:
    return Tenant(id=tenant_id, name=name, created_at=at())


def api_key(key_id: str = "k1", *, tenant_id: str = "t1", key_hash: str | None = None,
            **fields: Any) -> ApiKey:
    values = dict(id=key_id, tenant_id=tenant_id, name=f"key {key_id}", type="secret",
                  scopes=("consents:read",), origins=(), key_hash=key_hash or f"h_{tenant_id}_{key_id}",
                  prefix="sk_test", created_at=at())
    return ApiKey(**{**values, **fields})


def subject_token_key(kid: str = "kid1", *, tenant_id: str = "t1", minutes: float = 0) -> SubjectTokenKey:
    return SubjectTokenKey(kid=kid, tenant_id=tenant_id, alg="HS256", material=f"secret-{kid}",
                           created_at=at(minutes))


def purpose(key: str = "push", **fields: Any) -> Purpose:
    values = dict(key=key, kind=Kind.PROCESSING, title={"en": f"{key} title", "zh-CN": "个性化推送"})
    return Purpose(**{**values, **fields})


def policy(version: str = "2026-01", **fields: Any) -> PolicyVersion:
    values = dict(version=version, effective_at=at(), url=f"https://example.com/privacy/{version}",
                  material=False, summary={"en": "summary"})
    return PolicyVersion(**{**values, **fields})


def vendor(key: str = "umeng", **fields: Any) -> Vendor:
    values = dict(key=key, name="Umeng+", company="Youmeng Tongxin", data_collected=("device id",),
                  purposes=("analytics",), scenario="crash reports",
                  privacy_policy_url="https://example.com/umeng")
    return Vendor(**{**values, **fields})
