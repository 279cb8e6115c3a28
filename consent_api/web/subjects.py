"""Blueprint: one subject's consents, prompts, history, consent token and erasure."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple

from flask import Blueprint

from consent_api.domain.clock import format_ts
from consent_api.domain.model import Scope
from consent_api.services import consents, links
from consent_api.services.consents import Decision, Recorded, Submission
from consent_api.services.deps import Deps
from consent_api.services.idempotency import Claim
from consent_api.web import schemas
from consent_api.web.auth import caller, handed_over_error
from consent_api.web.context import deps, json_body, request_evidence
from consent_api.web.idempotency import claim, idempotent
from consent_api.web.params import page_args, query_time

bp = Blueprint("subjects", __name__, url_prefix="/v1/subjects")


def recorded_out(result: Recorded) -> dict:
    return {"events": result.events, "state": schemas.state_out(result.state),
            "receipt": result.receipt}


@bp.post("/<subject_id>/consents")
@idempotent(201, recorded_out)
def record_consents(subject_id: str):
    """Record decisions; answers the events, the new state and a signed receipt."""
    tenant_id = caller().require_subject(Scope.WRITE, subject_id)
    data = schemas.load(schemas.DecisionsIn, json_body())
    return record_decisions(deps(), tenant_id, subject_id, data, request_evidence(), claim())


def record_decisions(d: Deps, tenant_id: str, subject_id: str, data: dict[str, Any],
                     evidence: dict[str, Any], claim: Claim | None) -> Recorded:
    """DecisionsIn's document recorded: what record_consents and web/fastwrites.py both call."""
    submission = Submission(
        decisions=[Decision(**d) for d in data["decisions"]],
        policy_version=data["policy_version"], source=data["source"], locale=data["locale"],
        actor=data["actor"], age_band=data["age_band"], occurred_at=data["occurred_at"],
        evidence=evidence, claim=claim,
    )
    return consents.record(d, tenant_id, subject_id, submission)


@bp.post("/<subject_id>/consents/withdraw-all")
@idempotent(200, recorded_out)
def withdraw_all(subject_id: str):
    """Withdraw every non-essential grant in one call."""
    tenant_id = caller().require_subject(Scope.WRITE, subject_id)
    data = schemas.load(schemas.WithdrawAllIn, json_body())
    return consents.withdraw_all(deps(), tenant_id, subject_id, data["source"], data["locale"],
                                 request_evidence(), claim())


@bp.post("/<subject_id>/links")
@idempotent(200, recorded_out)
def link_anonymous(subject_id: str):
    """Carry an anonymous web visitor's decisions over to this subject (newest per purpose wins)."""
    tenant_id = caller().require_subject(Scope.WRITE, subject_id)
    data = schemas.load(schemas.LinkIn(), json_body())
    return links.link(deps(), tenant_id, subject_id, data["anonymous_subject_id"], claim())


@bp.post("/<subject_id>/prompts")
@idempotent(201, lambda events: {"events": events})
def record_prompts(subject_id: str):
    """Record that a consent dialog was shown; starts the re-prompt cooldown."""
    tenant_id = caller().require_subject(Scope.WRITE, subject_id)
    data = schemas.load(schemas.PromptsIn, json_body())
    return consents.record_prompts(deps(), tenant_id, subject_id, data["purposes"], data["source"],
                                   data["locale"], request_evidence(), claim(), data["os_permissions"])


def state_body(d: Deps, tenant_id: str, subject_id: str, at: datetime | None = None) -> dict[str, Any]:
    state = consents.state(d, tenant_id, subject_id, at)
    return schemas.state_out(state, format_ts(at) if at else None)


def purpose_body(d: Deps, tenant_id: str, subject_id: str, purpose: str) -> dict[str, Any]:
    state = consents.one_purpose(d, tenant_id, subject_id, purpose)
    return {"purpose": purpose, **schemas.purpose_state_out(state)}


class FastWrite(NamedTuple):
    """How web/fastwrites.py answers a write endpoint: the view's status and shape, and the
    function the view calls with (deps, tenant_id, subject_id, document, evidence, claim)."""

    status: int
    shape: Callable[[Any], Any]
    record: Callable[..., Any]


FAST_WRITES: dict[str, FastWrite] = {"subjects.record_consents": FastWrite(201, recorded_out, record_decisions)}


# The hot reads, by endpoint: web/fastreads.py answers these from the same functions, for a
# caller holding Scope.READ on the subject (or its subject token), with the URL's arguments.
FAST_READS: dict[str, Callable[..., dict[str, Any]]] = {
    "subjects.get_state": state_body,
    "subjects.get_purpose_state": purpose_body,
}


@bp.get("/<subject_id>/consents")
def get_state(subject_id: str):
    """The subject's state now, or at a past moment with ?at=."""
    handed_over_error()
    tenant_id = caller().require_subject(Scope.READ, subject_id)
    return state_body(deps(), tenant_id, subject_id, query_time("at"))


@bp.get("/<subject_id>/consents/<purpose>")
def get_purpose_state(subject_id: str, purpose: str):
    """One purpose of one subject: may I use it now?"""
    handed_over_error()
    tenant_id = caller().require_subject(Scope.READ, subject_id)
    return purpose_body(deps(), tenant_id, subject_id, purpose)


@bp.get("/<subject_id>/history")
def history(subject_id: str):
    """The subject's events, oldest first."""
    tenant_id = caller().require_subject(Scope.READ, subject_id)
    return schemas.page_out(consents.history(deps(), tenant_id, subject_id, *page_args()))


@bp.get("/<subject_id>/token")
def consent_token(subject_id: str):
    """A short-lived signed consent token listing the allowed purposes."""
    tenant_id = caller().require_subject(Scope.READ, subject_id)
    token, expires = consents.consent_token(deps(), tenant_id, subject_id)
    return {"token": token, "expires_at": format_ts(expires)}


@bp.delete("/<subject_id>")
def erase(subject_id: str):
    """Erase the subject: state and id go, the ledger keeps its proof under a pseudonym."""
    who = caller()
    tenant_id = who.require_scope(Scope.ADMIN)
    consents.erase(deps(), tenant_id, subject_id, who.credential_id)
    return "", 204
