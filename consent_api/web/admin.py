"""Blueprint: tenants, keys, subject-token keys, purposes, policies, vendors."""

from __future__ import annotations

from flask import Blueprint

from consent_api.domain.model import Scope
from consent_api.services import catalog, tenants
from consent_api.web import schemas
from consent_api.web.auth import caller
from consent_api.web.context import deps, json_body, settings
from consent_api.web.params import page_args

bp = Blueprint("admin", __name__, url_prefix="/v1")


@bp.post("/tenants")
def create_tenant():
    """Create a tenant; its first admin key is shown only in this answer."""
    caller().require_operator()
    data = schemas.load(schemas.TenantIn(), json_body())
    tenant, issued = tenants.create_tenant(deps().store, deps().clock, data["name"])
    return {"id": tenant.id, "name": tenant.name, "admin_key": issued.secret,
            "admin_key_id": issued.key.id}, 201


@bp.post("/keys")
def issue_key():
    """Issue an API key; the key is shown only in this answer."""
    tenant_id = caller().require_scope(Scope.ADMIN)
    data = schemas.load(schemas.KeyIn(), json_body())
    issued = tenants.issue_key(deps().store, deps().clock, tenant_id, **data)
    return schemas.key_out(issued.key, issued.secret), 201


@bp.get("/keys")
def list_keys():
    """List the tenant's keys, without secrets."""
    tenant_id = caller().require_scope(Scope.ADMIN)
    page = tenants.list_keys(deps().store, tenant_id, *page_args())
    return schemas.page_out(page, schemas.key_out)


@bp.get("/keys/<key_id>")
def get_key(key_id: str):
    """One key, without its secret."""
    tenant_id = caller().require_scope(Scope.ADMIN)
    return schemas.key_out(tenants.get_key(deps().store, tenant_id, key_id))


@bp.delete("/keys/<key_id>")
def revoke_key(key_id: str):
    """Revoke a key; it stops working at once."""
    tenant_id = caller().require_scope(Scope.ADMIN)
    return schemas.key_out(tenants.revoke_key(deps().store, deps().clock, tenant_id, key_id))


@bp.post("/subject-token-keys")
def register_subject_token_key():
    """Register a key for subject tokens (HS256 secret generated and shown once)."""
    tenant_id = caller().require_scope(Scope.ADMIN)
    data = schemas.load(schemas.SubjectTokenKeyIn(), json_body())
    issued = tenants.register_subject_token_key(deps().store, deps().clock, tenant_id,
                                                data["alg"], data["public_key"],
                                                settings().key_encryption_key)
    return schemas.subject_token_key_out(issued.key, issued.secret), 201


@bp.get("/subject-token-keys")
def list_subject_token_keys():
    """List subject-token keys, without secrets."""
    tenant_id = caller().require_scope(Scope.ADMIN)
    keys = tenants.list_subject_token_keys(deps().store, tenant_id)
    return {"items": [schemas.subject_token_key_out(k) for k in keys], "next_cursor": None}


@bp.delete("/subject-token-keys/<kid>")
def revoke_subject_token_key(kid: str):
    """Revoke a subject-token key; tokens signed with it stop working."""
    tenant_id = caller().require_scope(Scope.ADMIN)
    key = tenants.revoke_subject_token_key(deps().store, deps().clock, tenant_id, kid)
    return schemas.subject_token_key_out(key)


@bp.put("/purposes/<key>")
def put_purpose(key: str):
    """Define or replace a purpose (201 created, 200 replaced)."""
    tenant_id = caller().require_scope(Scope.ADMIN)
    data = schemas.load(schemas.PurposeIn(), json_body())
    purpose, created = catalog.put_purpose(deps().store, tenant_id, key, data)
    return schemas.purpose_out(purpose), 201 if created else 200


@bp.get("/purposes")
def list_purposes():
    """List purposes, archived ones included."""
    tenant_id = caller().require_scope(Scope.READ)
    page = catalog.list_purposes(deps().store, tenant_id, *page_args())
    return schemas.page_out(page, schemas.purpose_out)


@bp.get("/purposes/<key>")
def get_purpose(key: str):
    """One purpose."""
    tenant_id = caller().require_scope(Scope.READ)
    return schemas.purpose_out(catalog.get_purpose(deps().store, tenant_id, key))


@bp.delete("/purposes/<key>")
def archive_purpose(key: str):
    """Archive a purpose: no new grants, withdrawals still accepted, history kept."""
    tenant_id = caller().require_scope(Scope.ADMIN)
    return schemas.purpose_out(catalog.archive_purpose(deps().store, tenant_id, key))


@bp.post("/policies")
def publish_policy():
    """Publish a policy version; a material one makes older grants need re-consent."""
    tenant_id = caller().require_scope(Scope.ADMIN)
    data = schemas.load(schemas.PolicyIn(), json_body())
    return schemas.policy_out(catalog.publish_policy(deps().store, deps().clock, tenant_id, data)), 201


@bp.get("/policies")
def list_policies():
    """List policy versions by effective time, old ones included."""
    tenant_id = caller().require_scope(Scope.READ)
    page = catalog.list_policies(deps().store, tenant_id, *page_args())
    return schemas.page_out(page, schemas.policy_out)


@bp.get("/policies/<version>")
def get_policy(version: str):
    """One policy version."""
    tenant_id = caller().require_scope(Scope.READ)
    return schemas.policy_out(catalog.get_policy(deps().store, tenant_id, version))


@bp.put("/vendors/<key>")
def put_vendor(key: str):
    """Define or replace a third-party SDK / vendor disclosure (201 created, 200 replaced)."""
    tenant_id = caller().require_scope(Scope.ADMIN)
    data = schemas.load(schemas.VendorIn(), json_body())
    vendor, created = catalog.put_vendor(deps().store, tenant_id, key, data)
    return schemas.vendor_out(vendor), 201 if created else 200


@bp.get("/vendors")
def list_vendors():
    """List vendor disclosures."""
    tenant_id = caller().require_scope(Scope.READ)
    page = catalog.list_vendors(deps().store, tenant_id, *page_args())
    return schemas.page_out(page, schemas.vendor_out)


@bp.get("/vendors/<key>")
def get_vendor(key: str):
    """One vendor disclosure."""
    tenant_id = caller().require_scope(Scope.READ)
    return schemas.vendor_out(catalog.get_vendor(deps().store, tenant_id, key))
