"""Plain-dict forms of the domain objects, shared by the adapters (JSON in SQLite, BSON in MongoDB)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from consent_api.domain.clock import format_ts, parse_ts
from consent_api.domain.model import ApiKey, SubjectTokenKey, Tenant


def tenant_doc(tenant: Tenant) -> dict[str, Any]:
    return {"id": tenant.id, "name": tenant.name, "created_at": format_ts(tenant.created_at)}


def tenant_from(doc: dict[str, Any]) -> Tenant:
    return Tenant(id=doc["id"], name=doc["name"], created_at=parse_ts(doc["created_at"]))


def api_key_doc(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id, "tenant_id": key.tenant_id, "name": key.name, "type": key.type,
        "scopes": list(key.scopes), "origins": list(key.origins), "key_hash": key.key_hash,
        "prefix": key.prefix, "created_at": format_ts(key.created_at),
        "revoked_at": format_ts(key.revoked_at) if key.revoked_at else None,
    }


def api_key_from(doc: dict[str, Any]) -> ApiKey:
    return ApiKey(
        id=doc["id"], tenant_id=doc["tenant_id"], name=doc["name"], type=doc["type"],
        scopes=tuple(doc["scopes"]), origins=tuple(doc["origins"]), key_hash=doc["key_hash"],
        prefix=doc["prefix"], created_at=parse_ts(doc["created_at"]),
        revoked_at=parse_ts(doc["revoked_at"]) if doc.get("revoked_at") else None,
    )


def subject_token_key_doc(key: SubjectTokenKey) -> dict[str, Any]:
    return {
        "kid": key.kid, "tenant_id": key.tenant_id, "alg": key.alg, "material": key.material,
        "created_at": format_ts(key.created_at),
        "revoked_at": format_ts(key.revoked_at) if key.revoked_at else None,
    }


def subject_token_key_from(doc: dict[str, Any]) -> SubjectTokenKey:
    return SubjectTokenKey(
        kid=doc["kid"], tenant_id=doc["tenant_id"], alg=doc["alg"], material=doc["material"],
        created_at=parse_ts(doc["created_at"]),
        revoked_at=parse_ts(doc["revoked_at"]) if doc.get("revoked_at") else None,
    )


def check_draft_tenant(tenant_id: str, drafts: Iterable[dict[str, Any]]) -> None:
    """Refuse drafts that do not carry the tenant they are appended under.

    The chain covers the event's own tenant_id and MongoDB selects events by it, so an event
    filed under another (or no) tenant would silently drop out of its subject's history.
    """
    if any(d.get("tenant_id") != tenant_id for d in drafts):
        raise ValueError(f"every draft event must carry tenant_id {tenant_id!r}")
