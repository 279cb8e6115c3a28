"""The tenant's catalog: purposes, policy versions, vendor disclosures."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from consent_api.domain.clock import format_ts
from consent_api.domain.model import POLICY_VERSION, PURPOSE_KEY, PolicyVersion, Purpose, Vendor
from consent_api.errors import Invalid, NotFound
from consent_api.services import webhooks
from consent_api.services.deps import Deps
from consent_api.services.pages import Page, slice_page

CONSENT_MODE_SIGNALS = ("ad_storage", "analytics_storage", "ad_user_data", "ad_personalization")


def _check_key(key: str, what: str = "key") -> None:
    if not PURPOSE_KEY.match(key):
        raise Invalid.field(what, "must match ^[a-z][a-z0-9_.-]{0,63}$")


def put_purpose(deps: Deps, tenant_id: str, key: str, data: dict[str, Any]) -> tuple[Purpose, bool]:
    """Define or replace a purpose; True when created."""
    _check_key(key)
    purpose = Purpose.from_dict({**data, "key": key})
    created = deps.store.put_purpose(tenant_id, purpose)
    return purpose, created


def get_purpose(deps: Deps, tenant_id: str, key: str) -> Purpose:
    purpose = deps.store.get_purpose(tenant_id, key)
    if purpose is None:
        raise NotFound(f"unknown purpose {key!r}")
    return purpose


def list_purposes(deps: Deps, tenant_id: str, cursor: str | None, limit: int | None) -> Page[Purpose]:
    return slice_page(deps.store.list_purposes(tenant_id), cursor, limit, key=lambda p: p.key)


def archive_purpose(deps: Deps, tenant_id: str, key: str) -> Purpose:
    """Purposes are archived, never deleted: decisions about them stay explainable."""
    archived = replace(get_purpose(deps, tenant_id, key), archived=True)
    deps.store.put_purpose(tenant_id, archived)
    return archived


def publish_policy(deps: Deps, tenant_id: str, data: dict[str, Any]) -> PolicyVersion:
    if not POLICY_VERSION.match(data["version"]):
        raise Invalid.field("version", "must match ^[A-Za-z0-9._-]{1,64}$")
    policy = PolicyVersion(
        version=data["version"], effective_at=data.get("effective_at") or deps.clock(),
        url=data.get("url"), sha256=data.get("sha256"), material=bool(data.get("material")),
        summary=dict(data.get("summary") or {}), published_at=deps.clock(),
    )
    deps.store.add_policy(tenant_id, policy)
    webhooks.policy_published(deps, tenant_id, policy)
    return policy


def get_policy(deps: Deps, tenant_id: str, version: str) -> PolicyVersion:
    for policy in deps.store.list_policies(tenant_id):
        if policy.version == version:
            return policy
    raise NotFound(f"unknown policy version {version!r}")


def list_policies(deps: Deps, tenant_id: str, cursor: str | None, limit: int | None) -> Page[PolicyVersion]:
    ordered = sorted(deps.store.list_policies(tenant_id), key=_policy_order)
    return slice_page(ordered, cursor, limit, key=_policy_order_key)


def _policy_order(p: PolicyVersion) -> tuple:
    return (p.effective_at, p.version)


def _policy_order_key(p: PolicyVersion) -> str:
    return f"{format_ts(p.effective_at)}|{p.version}"


def put_vendor(deps: Deps, tenant_id: str, key: str, data: dict[str, Any]) -> tuple[Vendor, bool]:
    _check_key(key)
    vendor = Vendor.from_dict({**data, "key": key})
    return vendor, deps.store.put_vendor(tenant_id, vendor)


def get_vendor(deps: Deps, tenant_id: str, key: str) -> Vendor:
    for vendor in deps.store.list_vendors(tenant_id):
        if vendor.key == key:
            return vendor
    raise NotFound(f"unknown vendor {key!r}")


def list_vendors(deps: Deps, tenant_id: str, cursor: str | None, limit: int | None) -> Page[Vendor]:
    return slice_page(deps.store.list_vendors(tenant_id), cursor, limit, key=lambda v: v.key)
