"""The catalog: purposes (titles and descriptions in both languages), policy versions with their
material flag, vendor disclosures. Readers and auditors see it; admin keys define and change it,
through the same services and schemas as PUT /v1/purposes, POST /v1/policies, PUT /v1/vendors."""

from __future__ import annotations

from typing import Any

from flask import Response, redirect, request

from consent_api.domain.model import Kind
from consent_api.errors import Invalid
from consent_api.services import catalog
from consent_api.web import schemas
from consent_api.web.console import PREFIX, Officer, admin, bp, forms, officer, render
from consent_api.web.context import deps

KINDS = [str(k) for k in Kind]


def _reader() -> Officer:
    who = officer()
    who.rights.require(who.rights.read)
    return who


# --- purposes ----------------------------------------------------------------------------------------

def _purposes_page(who: Officer, status: int = 200, **context: Any) -> Response:
    purposes = deps().store.list_purposes(who.tenant_id)
    editing = None
    if "values" not in context and request.args.get("edit"):
        editing = next((p for p in purposes if p.key == request.args["edit"]), None)
    return render("console/purposes.html", status=status, who=who, purposes=purposes, kinds=KINDS,
                  editing=editing, saved=request.args.get("saved"), **context)


@bp.get("/purposes")
def purposes():
    return _purposes_page(_reader())


@bp.post("/purposes")
def save_purpose():
    who = admin()
    key = forms.text("key")
    try:
        existing = deps().store.get_purpose(who.tenant_id, key) if key else None
        kept: dict[str, Any] = {}
        if existing is not None:  # what the form does not show stays as it was
            kept = {k: v for k, v in existing.to_dict().items() if k in ("vendors", "consent_mode", "archived")}
        body = {**kept, "kind": forms.text("kind"), "title": forms.localized("title"),
                "description": forms.localized("description"), "sensitive": forms.flag("sensitive"),
                "essential": forms.flag("essential"), "validity_days": forms.number("validity_days")}
        hours = forms.number("reprompt_after_hours")
        if hours is not None:
            body["reprompt_after_hours"] = hours
        data = schemas.load(schemas.PurposeIn, body)
        catalog.put_purpose(deps(), who.tenant_id, key, data)
    except Invalid as exc:
        return _purposes_page(who, 422, errors=forms.field_errors(exc), values=forms.values())
    return redirect(f"{PREFIX}/purposes?saved={key}")


@bp.post("/purposes/<key>/archive")
def archive_purpose(key: str):
    who = admin()
    catalog.archive_purpose(deps(), who.tenant_id, key)
    return redirect(f"{PREFIX}/purposes?saved={key}")


# --- policies ----------------------------------------------------------------------------------------

def _policies_page(who: Officer, status: int = 200, **context: Any) -> Response:
    policies = sorted(deps().store.list_policies(who.tenant_id), key=lambda p: (p.effective_at, p.version),
                      reverse=True)
    current = next((p for p in policies if p.effective_at <= deps().clock()), None)
    return render("console/policies.html", status=status, who=who, policies=policies, current=current,
                  saved=request.args.get("saved"), **context)


@bp.get("/policies")
def policies():
    return _policies_page(_reader())


@bp.post("/policies")
def publish_policy():
    who = admin()
    try:
        body: dict[str, Any] = {"version": forms.text("version"), "material": forms.flag("material"),
                                "summary": forms.localized("summary"), "url": forms.optional("url")}
        effective = forms.local_time("effective_at")
        if effective:
            body["effective_at"] = effective
        data = schemas.load(schemas.PolicyIn, body)
        policy = catalog.publish_policy(deps(), who.tenant_id, data)
    except Invalid as exc:
        return _policies_page(who, 422, errors=forms.field_errors(exc), values=forms.values())
    return redirect(f"{PREFIX}/policies?saved={policy.version}")


# --- vendors -----------------------------------------------------------------------------------------

def _vendors_page(who: Officer, status: int = 200, **context: Any) -> Response:
    return render("console/vendors.html", status=status, who=who,
                  vendors=deps().store.list_vendors(who.tenant_id),
                  purposes=deps().store.list_purposes(who.tenant_id), saved=request.args.get("saved"), **context)


@bp.get("/vendors")
def vendors():
    return _vendors_page(_reader())


@bp.post("/vendors")
def save_vendor():
    who = admin()
    key = forms.text("key")
    try:
        body = {"name": forms.text("name"), "company": forms.text("company"),
                "data_collected": forms.lines("data_collected"), "purposes": forms.chosen("purposes"),
                "scenario": forms.text("scenario"), "privacy_policy_url": forms.optional("privacy_policy_url")}
        data = schemas.load(schemas.VendorIn, body)
        catalog.put_vendor(deps(), who.tenant_id, key, data)
    except Invalid as exc:
        return _vendors_page(who, 422, errors=forms.field_errors(exc), values=forms.values())
    return redirect(f"{PREFIX}/vendors?saved={key}")
