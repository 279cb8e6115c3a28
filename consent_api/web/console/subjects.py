"""Subjects: look one up by id, see its state, its history as a timeline with every event's hash
and whether the chain verifies, the anonymous visitors linked in, check a receipt; erase it
after typing its id again (admin keys only)."""

from __future__ import annotations

from urllib.parse import quote

from flask import redirect, request

from consent_api.domain.model import SUBJECT_ID, Purpose
from consent_api.errors import ConsentApiError, Invalid, NotFound
from consent_api.services import console
from consent_api.web.console import PREFIX, Officer, admin, bp, officer, render
from consent_api.web.context import deps


@bp.get("/subjects")
def subjects():
    who = officer()
    who.rights.require(who.rights.read)
    wanted = (request.args.get("id") or "").strip()
    if wanted and SUBJECT_ID.match(wanted):
        return redirect(f"{PREFIX}/subjects/{quote(wanted, safe='')}")
    return render("console/subjects.html", who=who, wanted=wanted, invalid=bool(wanted),
                  erased=request.args.get("erased") == "1", status=422 if wanted else 200)


@bp.get("/subjects/<subject_id>")
def subject(subject_id: str):
    who = officer()
    who.rights.require(who.rights.read)
    try:
        view = console.subject(deps(), who.tenant_id, subject_id)
    except NotFound:
        return render("console/subjects.html", who=who, wanted=subject_id, unknown=True, status=404)
    receipt = request.args.get("receipt")
    checked = None
    if receipt:
        try:
            checked = console.check_receipt(deps(), who.tenant_id, subject_id, receipt, view.events)
        except Invalid as exc:
            checked = console.ReceiptCheck(False, exc.detail)
    return render("console/subject.html", who=who, view=view, receipt=receipt, checked=checked,
                  purposes=_purposes(who))


def _purposes(who: Officer) -> dict[str, Purpose]:
    """The catalog, for the purposes' titles in the page's language."""
    return {p.key: p for p in deps().store.list_purposes(who.tenant_id)}


@bp.post("/subjects/<subject_id>/erase")
def erase(subject_id: str):
    who = admin()
    try:
        console.erase(deps(), who.tenant_id, subject_id, request.form.get("confirm", ""), who.key.id)
    except ConsentApiError as exc:
        if exc.status != 422:
            raise
        view = console.subject(deps(), who.tenant_id, subject_id)
        return render("console/subject.html", status=422, who=who, view=view, receipt=None, checked=None,
                      erase_error=True, purposes=_purposes(who))
    return redirect(f"{PREFIX}/subjects?erased=1")
