"""Rights requests (PIPL arts. 44-50): what a person asked for, where it stands, and the ledger
events that prove when it was opened and answered (DESIGN.md §9.2, §9.6).

    open --PATCH in_progress--> in_progress --PATCH completed|rejected--> (final)
    open --PATCH completed|rejected--> (final)

Each creation and transition is an event in the subject's chain, with ``purpose: null`` and, at
the top level, ``request_id``, ``request_type``, ``status``, ``due_at`` and ``notice``:

    request_opened   status open                        notice null
    request_updated  status in_progress                 notice null
    request_closed   status completed | rejected        notice null
    request_updated  status as it stands (unchanged)    notice "due_soon" | "overdue"

The last row is the scheduler's mark (services/requests.py ``tick``): at most one of each notice
per request. Free text (details, note, reason) stays in the request's record, never in the
ledger, which erasure cannot rewrite. None of these events changes a consent status.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from consent_api.domain.clock import format_ts


class RequestType(StrEnum):
    ACCESS = "access"
    COPY = "copy"
    CORRECT = "correct"
    DELETE = "delete"
    WITHDRAW = "withdraw"
    CLOSE_ACCOUNT = "close_account"
    EXPLAIN = "explain"


class RequestStatus(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    REJECTED = "rejected"


class RequestAction(StrEnum):
    OPENED = "request_opened"
    UPDATED = "request_updated"
    CLOSED = "request_closed"


class Notice(StrEnum):
    DUE_SOON = "due_soon"  # DUE_SOON_DAYS counted days or fewer are left
    OVERDUE = "overdue"  # due_at has passed and the request is still not answered


FINAL = (RequestStatus.COMPLETED, RequestStatus.REJECTED)
PENDING = (RequestStatus.OPEN, RequestStatus.IN_PROGRESS)
DUE_SOON_DAYS = 2
# The event fields a request event carries besides EVENT_FIELDS (always all five).
REQUEST_FIELDS = ("request_id", "request_type", "status", "due_at", "notice")
REQUEST_ACTIONS = tuple(str(a) for a in RequestAction)


@dataclass(frozen=True)
class RightsRequest:
    id: str
    tenant_id: str
    subject_id: str | None  # None once the subject is erased
    type: str
    status: str
    created_at: datetime
    due_at: datetime
    updated_at: datetime
    due_at_estimated: bool = False
    details: str | None = None
    channel: str | None = None
    note: str | None = None
    reason: str | None = None
    notices: tuple[str, ...] = ()
    version: int = 1  # compare-and-set: every change bumps it

    @property
    def final(self) -> bool:
        return self.status in FINAL

    def changed(self, **changes: Any) -> RightsRequest:
        return replace(self, version=self.version + 1, **changes)

    def to_dict(self) -> dict[str, Any]:
        """As GET /v1/requests/{id} answers it (and request.* webhook messages carry it)."""
        return {
            "id": self.id, "subject_id": self.subject_id, "type": self.type, "status": self.status,
            "details": self.details, "channel": self.channel, "created_at": format_ts(self.created_at),
            "due_at": format_ts(self.due_at), "due_at_estimated": self.due_at_estimated,
            "updated_at": format_ts(self.updated_at), "note": self.note, "reason": self.reason,
            "notices": list(self.notices),
        }


def action_for(status: str) -> RequestAction:
    """The event action a transition to status writes."""
    if status == RequestStatus.OPEN:
        return RequestAction.OPENED
    return RequestAction.CLOSED if status in FINAL else RequestAction.UPDATED
