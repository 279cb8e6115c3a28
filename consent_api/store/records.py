"""Plain-dict forms of the domain objects, shared by the adapters (JSON in SQLite, BSON in MongoDB).

These are storage documents: they change only with a migration, never with the HTTP shapes
(web/schemas/), which are built separately."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from consent_api.domain.appending import check_tenant
from consent_api.domain.clock import format_ts, parse_ts
from consent_api.domain.model import (
    ApiKey,
    Kind,
    LinkCode,
    PageSession,
    PolicyVersion,
    Purpose,
    SubjectTokenKey,
    Tenant,
    Vendor,
)
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


def purpose_doc(purpose: Purpose) -> dict[str, Any]:
    return {
        "key": purpose.key, "kind": str(purpose.kind), "title": dict(purpose.title),
        "description": dict(purpose.description), "sensitive": purpose.needs_separate,
        "essential": purpose.essential, "validity_days": purpose.validity_days,
        "reprompt_after_hours": purpose.reprompt_after_hours, "vendors": list(purpose.vendors),
        "consent_mode": list(purpose.consent_mode), "archived": purpose.archived,
    }


def purpose_from(doc: dict[str, Any]) -> Purpose:
    return Purpose(
        key=doc["key"], kind=Kind(doc["kind"]), title=dict(doc["title"]),
        description=dict(doc.get("description") or {}), sensitive=bool(doc.get("sensitive")),
        essential=bool(doc.get("essential")), validity_days=doc.get("validity_days"),
        reprompt_after_hours=float(doc["reprompt_after_hours"]), vendors=tuple(doc.get("vendors") or ()),
        consent_mode=tuple(doc.get("consent_mode") or ()), archived=bool(doc.get("archived")),
    )


def policy_doc(policy: PolicyVersion) -> dict[str, Any]:
    return {
        "version": policy.version, "effective_at": format_ts(policy.effective_at), "url": policy.url,
        "sha256": policy.sha256, "material": policy.material, "summary": dict(policy.summary),
        "published_at": format_ts(policy.published_at) if policy.published_at else None,
    }


def policy_from(doc: dict[str, Any]) -> PolicyVersion:
    return PolicyVersion(
        version=doc["version"], effective_at=parse_ts(doc["effective_at"]), url=doc.get("url"),
        sha256=doc.get("sha256"), material=bool(doc.get("material")), summary=dict(doc.get("summary") or {}),
        published_at=parse_ts(doc["published_at"]) if doc.get("published_at") else None,
    )


def vendor_doc(vendor: Vendor) -> dict[str, Any]:
    return {
        "key": vendor.key, "name": vendor.name, "company": vendor.company,
        "data_collected": list(vendor.data_collected), "purposes": list(vendor.purposes),
        "scenario": vendor.scenario, "privacy_policy_url": vendor.privacy_policy_url,
    }


def vendor_from(doc: dict[str, Any]) -> Vendor:
    return Vendor(
        key=doc["key"], name=doc["name"], company=doc["company"],
        data_collected=tuple(doc.get("data_collected") or ()), purposes=tuple(doc.get("purposes") or ()),
        scenario=doc.get("scenario") or "", privacy_policy_url=doc.get("privacy_policy_url"),
    )


def session_doc(session: PageSession) -> dict[str, Any]:
    return {
        "token_hash": session.token_hash, "kind": session.kind, "csrf": session.csrf,
        "created_at": format_ts(session.created_at), "last_seen_at": format_ts(session.last_seen_at),
        "expires_at": format_ts(session.expires_at), "tenant_id": session.tenant_id,
        "subject_id": session.subject_id, "key_id": session.key_id, "scopes": list(session.scopes),
        "locale": session.locale,
    }


def session_from(doc: dict[str, Any]) -> PageSession:
    return PageSession(
        token_hash=doc["token_hash"], kind=doc["kind"], csrf=doc["csrf"],
        created_at=parse_ts(doc["created_at"]), last_seen_at=parse_ts(doc["last_seen_at"]),
        expires_at=parse_ts(doc["expires_at"]), tenant_id=doc.get("tenant_id"),
        subject_id=doc.get("subject_id"), key_id=doc.get("key_id"), scopes=tuple(doc.get("scopes") or ()),
        locale=doc.get("locale"),
    )


def link_code_doc(code: LinkCode) -> dict[str, Any]:
    return {"code_hash": code.code_hash, "tenant_id": code.tenant_id, "subject_id": code.subject_id,
            "created_at": format_ts(code.created_at), "expires_at": format_ts(code.expires_at)}


def link_code_from(doc: dict[str, Any]) -> LinkCode:
    return LinkCode(code_hash=doc["code_hash"], tenant_id=doc["tenant_id"], subject_id=doc["subject_id"],
                    created_at=parse_ts(doc["created_at"]), expires_at=parse_ts(doc["expires_at"]))


def chain_ref(tenant_id: str, events: Sequence[dict[str, Any]]) -> str | None:
    """The one subject_ref a batch of imported events belongs to (None for no events)."""
    check_tenant(tenant_id, events)
    refs = {e.get("subject_ref") for e in events}
    if len(refs) > 1 or None in refs:
        raise ValueError("imported events must all carry the same subject_ref")
    return next(iter(refs), None)


def new_in_chain(events: Sequence[dict[str, Any]], head_seq: int, head_hash: str) -> list[dict[str, Any]]:
    """The events past the chain's head, checked to continue it link by link (Conflict if not).

    Hashes are not recomputed: an import copies evidence verbatim, tampering included, and
    rebuild-state reports a broken chain wherever it is stored."""
    new = [e for e in events if e["seq"] > head_seq]
    seq, prev = head_seq, head_hash  # type: tuple[int, str | None]
    for event in new:
        if event["seq"] != seq + 1 or event.get("prev_hash") != prev:
            raise Conflict(f"chain {event.get('subject_ref')}: seq {event['seq']} does not continue "
                           f"the stored head (seq {seq})")
        seq, prev = event["seq"], event.get("hash")
    return new
