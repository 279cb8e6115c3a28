"""Response shapers (``..._out``): plain functions, because the read path is hot."""

from __future__ import annotations

from typing import Any

from consent_api.domain.clock import format_ts
from consent_api.domain.model import ApiKey, PolicyVersion, Purpose, SubjectTokenKey, Vendor
from consent_api.domain.requests import RightsRequest
from consent_api.domain.status import PurposeState, SubjectState
from consent_api.services.pages import Page


def page_out(page: Page, shape=lambda item: item) -> dict[str, Any]:
    return {"items": [shape(item) for item in page.items], "next_cursor": page.next_cursor}


def key_out(key: ApiKey, secret: str | None = None) -> dict[str, Any]:
    body = {
        "id": key.id, "name": key.name, "type": key.type, "scopes": list(key.scopes),
        "origins": list(key.origins), "prefix": key.prefix, "created_at": format_ts(key.created_at),
        "revoked_at": format_ts(key.revoked_at) if key.revoked_at else None,
    }
    if secret is not None:
        body["key"] = secret
    return body


def subject_token_key_out(key: SubjectTokenKey, secret: str | None = None) -> dict[str, Any]:
    body = {"kid": key.kid, "alg": key.alg, "created_at": format_ts(key.created_at),
            "revoked_at": format_ts(key.revoked_at) if key.revoked_at else None}
    if key.alg != "HS256":
        body["public_key"] = key.material
    if secret is not None:
        body["secret"] = secret
    return body


def purpose_out(purpose: Purpose) -> dict[str, Any]:
    return purpose.to_dict()


def policy_out(policy: PolicyVersion) -> dict[str, Any]:
    return policy.to_dict()


def vendor_out(vendor: Vendor) -> dict[str, Any]:
    return vendor.to_dict()


def purpose_state_out(s: PurposeState) -> dict[str, Any]:
    body = {
        "status": str(s.status), "allowed": s.allowed, "updated_at": s.updated_at,
        "policy_version": s.policy_version, "expires_at": s.expires_at,
        "can_prompt": s.can_prompt, "next_prompt_at": s.next_prompt_at,
        "os_permission": s.os_permission, "os_permission_mismatch": s.os_permission_mismatch,
    }
    if s.archived:
        body["archived"] = True
    return body


def state_out(state: SubjectState, at: str | None = None) -> dict[str, Any]:
    body = {
        "subject_id": state.subject_id, "policy_version": state.policy_version,
        "needs_reconsent": state.needs_reconsent, "age_band": state.age_band,
        "purposes": {key: purpose_state_out(s) for key, s in state.purposes.items()},
    }
    if at is not None:
        body["at"] = at
    return body


def request_out(r: RightsRequest) -> dict[str, Any]:
    return r.to_dict()
