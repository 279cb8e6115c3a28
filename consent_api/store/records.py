"""Plain-dict forms of the domain objects, shared by the adapters (JSON in SQLite, BSON in MongoDB)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from consent_api.domain.clock import format_ts, parse_ts
from consent_api.domain.model import ApiKey, SubjectTokenKey, Tenant
from consent_api.errors import Conflict


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


def chain_ref(tenant_id: str, events: Sequence[dict[str, Any]]) -> str | None:
    """The one subject_ref a batch of imported events belongs to (None for no events)."""
    check_draft_tenant(tenant_id, events)
    refs = {e.get("subject_ref") for e in events}
    if len(refs) > 1 or None in refs:
        raise ValueError("imported events must all carry the same subject_ref")
    return next(iter(refs), None)


def new_in_chain(events: Sequence[dict[str, Any]], head_seq: int, head_hash: str) -> list[dict[str, Any]]:
    """The events past the chain's head, checked to continue it link by link (Conflict if not).

    Hashes are not recomputed: an import copies evidence verbatim, tampering included, and
    rebuild-state reports a broken chain wherever it is stored."""
    new = [e for e in events if e["seq"] > head_seq]
    seq, prev = head_seq, head_hash
    for event in new:
        if event["seq"] != seq + 1 or event.get("prev_hash") != prev:
            raise Conflict(f"chain {event.get('subject_ref')}: seq {event['seq']} does not continue "
                           f"the stored head (seq {seq})")
        seq, prev = event["seq"], event.get("hash")
    return new
