"""What the web banner sees: the tenant's config resolved to one locale, and anonymous
decisions recorded through the same rules and ledger as every other channel."""

from __future__ import annotations

from typing import Any

from consent_api.domain.clock import format_ts
from consent_api.domain.model import ANONYMOUS_PREFIX
from consent_api.domain.status import Policies
from consent_api.errors import Invalid
from consent_api.services import consents
from consent_api.services.consents import Decision, Recorded, Submission
from consent_api.services.deps import Deps
from consent_api.services.idempotency import Claim

SNIPPET_LOCALES = ("en", "zh-CN")


def resolve_locale(requested: str | None) -> str:
    """zh, zh-Hans, zh_CN … → zh-CN; anything else the snippet does not ship → en."""
    if requested and requested.replace("_", "-").lower().startswith("zh"):
        return "zh-CN"
    return "en"


def localized(texts: dict[str, str], locale: str) -> str:
    if not texts:
        return ""
    for candidate in (locale, locale.split("-")[0], "en"):
        if candidate in texts:
            return texts[candidate]
    prefix = locale.split("-")[0] + "-"
    for key, text in texts.items():
        if key.startswith(prefix):
            return text
    return next(iter(texts.values()))


def banner_config(deps: Deps, tenant_id: str, tenant_name: str, requested: str | None) -> dict[str, Any]:
    """Purposes the banner may ask for (sensitive ones are asked in the app), policy, vendors."""
    locale = resolve_locale(requested)
    now = deps.clock()
    policies = Policies(deps.store.list_policies(tenant_id))
    current = policies.current(now)
    material = [p for p in deps.store.list_policies(tenant_id) if p.material and p.effective_at <= now]
    latest_material = max(material, key=lambda p: (p.effective_at, p.version), default=None)
    purposes = [
        {"key": p.key, "kind": str(p.kind), "essential": p.essential,
         "title": localized(p.title, locale), "description": localized(p.description, locale),
         "consent_mode": list(p.consent_mode)}
        for p in deps.store.list_purposes(tenant_id) if not p.archived and not p.needs_separate
    ]
    return {
        "tenant": {"id": tenant_id, "name": tenant_name},
        "policy": None if current is None else {
            "version": current.version, "url": current.url,
            "effective_at": format_ts(current.effective_at), "material": current.material,
            "material_version": latest_material.version if latest_material else None,
        },
        "purposes": purposes,
        "vendors": [v.to_dict() for v in deps.store.list_vendors(tenant_id)],
        "locale": locale,
    }


def record_anonymous(deps: Deps, tenant_id: str, subject_id: str, decisions: list[dict[str, Any]],
                     policy_version: str, locale: str | None, evidence: dict[str, Any],
                     claim: Claim | None = None) -> Recorded:
    if not subject_id.startswith(ANONYMOUS_PREFIX):
        raise Invalid.field("subject_id", "browser subjects are anonymous: the id starts with anon-")
    submission = Submission(
        decisions=[Decision(d["purpose"], d["granted"]) for d in decisions],
        policy_version=policy_version, source={"channel": "web", "collection_point": "banner"},
        locale=locale, evidence=evidence, claim=claim,
    )
    return consents.record(deps, tenant_id, subject_id, submission)
