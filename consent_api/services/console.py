"""What the console's pages show and may do, without Flask: who signed in and with which rights,
the overview's charts (from the same per-day counters as GET /v1/stats), a subject's record
with its verified chain, receipts checked against the service's keys, and CSV of a chart.

Writes go through the API's own services (catalog, tenants, consents, audit), so the console
changes nothing the API would not, with the same rules and the same events.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from consent_api.domain import daily
from consent_api.domain.clock import format_ts, parse_ts
from consent_api.domain.ledger import verify_chain
from consent_api.domain.model import ApiKey, Scope
from consent_api.domain.status import SubjectState
from consent_api.errors import Forbidden, Invalid, NotFound, Unauthorized
from consent_api.security import apikeys, tokens
from consent_api.services import consents, stats, tenants
from consent_api.services.deps import Deps
from consent_api.services.links import LINK_POINT
from consent_api.store.port import ExportFilter

# --- who signed in -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Rights:
    """What a key's scopes let it see and do in the console (admin implies every scope)."""

    scopes: tuple[str, ...]

    def has(self, scope: str) -> bool:
        return Scope.ADMIN in self.scopes or scope in self.scopes

    @property
    def read(self) -> bool:
        """Overview, subjects and the catalog: a reader's or an auditor's."""
        return self.has(Scope.READ) or self.has(Scope.AUDIT)

    @property
    def export(self) -> bool:
        return self.has(Scope.AUDIT)

    @property
    def admin(self) -> bool:
        """Every page that changes data: catalog, keys, erasure."""
        return Scope.ADMIN in self.scopes

    def require(self, allowed: bool) -> None:
        if not allowed:
            raise Forbidden("the key this session signed in with lacks the scope for this")


def sign_in(deps: Deps, api_key: str) -> ApiKey:
    """The tenant secret key an officer typed, if it may open the console."""
    secret = api_key.strip()
    if not secret.startswith(apikeys.SECRET_PREFIX):
        raise Unauthorized("the console opens with a tenant's secret API key (sk_...)")
    key = deps.store.find_api_key(apikeys.hash_key(secret))
    if key is None or key.revoked_at is not None or key.type != "secret":
        raise Unauthorized("unknown or revoked API key")
    if not Rights(key.scopes).read:
        raise Forbidden("this key's scopes show nothing in the console (it needs consents:read, "
                        "audit:read or admin)")
    return key


def live_key(deps: Deps, tenant_id: str, key_id: str | None) -> ApiKey | None:
    """The key a session signed in with, while it is not revoked: a revocation ends the session
    at its next request."""
    if key_id is None:
        return None
    key = deps.store.get_api_key(tenant_id, key_id)
    return key if key is not None and key.revoked_at is None else None


# --- the overview ----------------------------------------------------------------------------------

SPANS = (7, 30, 90, 365)  # days the overview offers
CHANNEL_NAMES = daily.CHANNELS


@dataclass(frozen=True)
class Cell:
    value: float | int | None  # what the chart draws (None: nothing that day)
    text: str  # what the table shows
    data: dict[str, Any] = field(default_factory=dict)  # data-* attributes of the cell


@dataclass(frozen=True)
class Chart:
    key: str  # the data-chart / data-table name
    unit: str  # "percent" or "count"
    columns: list[str]  # series: purpose keys or channel names
    days: list[str]
    rows: list[list[Cell]]  # one per day, one cell per column

    def csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(["date", *self.columns])
        for day, cells in zip(self.days, self.rows, strict=True):
            writer.writerow([day, *("" if c.value is None else c.value for c in cells)])
        return out.getvalue()


@dataclass(frozen=True)
class Overview:
    timezone: str
    since: str
    until: str
    span: int
    purposes: list[str]
    charts: dict[str, Chart]
    backlog: dict[str, int]  # purpose -> subjects needing re-consent at the end of the last day
    allowed: dict[str, int]  # purpose -> subjects allowed at the end of the last day


def span_dates(deps: Deps, span: int | None, until: date | None) -> tuple[date, date, int]:
    """[since, until) of span days ending with until (default: today included)."""
    days = span if span in SPANS else 30
    end = until or daily.today(deps.clock()) + timedelta(days=1)
    return end - timedelta(days=days), end, days


def overview(deps: Deps, tenant_id: str, span: int | None = None, until: date | None = None) -> Overview:
    since, end, days = span_dates(deps, span, until)
    found = stats.stats(deps, tenant_id, since, end, None)
    purposes = [p.key for p in deps.store.list_purposes(tenant_id) if not p.essential]
    by_day: dict[str, dict[str, dict[str, Any]]] = {}
    for row in found.days:
        by_day.setdefault(row["date"], {})[row["purpose"]] = row
    dates = sorted(by_day)
    charts = {
        "opt-in-rate": Chart("opt-in-rate", "percent", purposes, dates,
                             [[_rate(by_day[d][p]) for p in purposes] for d in dates]),
        "decisions-by-channel": Chart("decisions-by-channel", "count", list(CHANNEL_NAMES), dates,
                                      [[_count(sum(r["channels"][c] for r in by_day[d].values()))
                                        for c in CHANNEL_NAMES] for d in dates]),
        "withdrawals": Chart("withdrawals", "count", purposes, dates,
                             [[_count(by_day[d][p]["withdrawals"]) for p in purposes] for d in dates]),
        "allowed-subjects": Chart("allowed-subjects", "count", purposes, dates,
                                  [[_count(by_day[d][p]["allowed_subjects"]) for p in purposes] for d in dates]),
        "reconsent-backlog": Chart("reconsent-backlog", "count", purposes, dates,
                                   [[_count(by_day[d][p]["reconsent_required"]) for p in purposes] for d in dates]),
    }
    last = by_day[dates[-1]] if dates else {}
    return Overview(found.timezone, found.since, found.until, days, purposes, charts,
                    {p: last[p]["reconsent_required"] for p in purposes if p in last},
                    {p: last[p]["allowed_subjects"] for p in purposes if p in last})


def _rate(row: dict[str, Any]) -> Cell:
    """Opt-in rate of a day: grants among that day's decisions (grants, denies, withdrawals)."""
    decided = row["grants"] + row["denies"] + row["withdrawals"]
    data = {"grants": row["grants"], "decisions": decided}
    if not decided:
        return Cell(None, "–", data)
    rate = round(100 * row["grants"] / decided, 1)
    return Cell(rate, f"{rate:g}% ({row['grants']}/{decided})", data)


def _count(n: int) -> Cell:
    return Cell(n, f"{n:,}", {"value": n})


# --- one subject -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkedVisitor:
    event_id: str  # the event of this subject's chain that carried the decision over
    anonymous_event_id: str
    anonymous_subject_id: str | None  # None: not found near the decision's time (or erased since)


@dataclass(frozen=True)
class SubjectView:
    subject_id: str
    state: SubjectState
    events: list[dict[str, Any]]
    chain_ok: bool
    chain_problem: str | None
    linked: list[LinkedVisitor]


def subject(deps: Deps, tenant_id: str, subject_id: str) -> SubjectView:
    """State, every event oldest first, whether the hash chain verifies, and the anonymous web
    visitors whose decisions were linked in."""
    current = consents.state(deps, tenant_id, subject_id)
    events = history(deps, tenant_id, subject_id)
    _, problem = verify_chain(events)
    return SubjectView(subject_id, current, events, problem is None, problem,
                       linked_visitors(deps, tenant_id, events))


def history(deps: Deps, tenant_id: str, subject_id: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = consents.history(deps, tenant_id, subject_id, cursor, 500)
        events += page.items
        if page.next_cursor is None:
            return events
        cursor = page.next_cursor


LINK_SEARCH = 2000  # events read around a linked decision's time to find its anonymous subject


def linked_visitors(deps: Deps, tenant_id: str, events: Iterable[dict[str, Any]]) -> list[LinkedVisitor]:
    """For each decision carried over from an anonymous visitor (collection_point
    "link:<event_id>", services/links.py), that visitor's id, found in the ledger near the
    decision's own time (it keeps its occurred_at), reading at most LINK_SEARCH events."""
    found = []
    skew = timedelta(seconds=deps.clock_skew_s)
    for event in events:
        point = (event.get("source") or {}).get("collection_point") or ""
        if not point.startswith(LINK_POINT):
            continue
        wanted = point[len(LINK_POINT):]
        since = parse_ts(event["occurred_at"]) - skew
        anonymous = None
        flt = ExportFilter(since=format_ts(since), purpose=event.get("purpose"))
        for n, candidate in enumerate(deps.store.export_events(tenant_id, flt)):
            if candidate["event_id"] == wanted:
                anonymous = candidate.get("subject_id")
                break
            if n >= LINK_SEARCH:
                break
        found.append(LinkedVisitor(event["event_id"], wanted, anonymous))
    return found


@dataclass(frozen=True)
class ReceiptCheck:
    signature_ok: bool
    problem: str | None = None
    issued_at: str | None = None
    decisions: list[dict[str, Any]] = field(default_factory=list)  # each with "in_chain": bool


def check_receipt(deps: Deps, tenant_id: str, subject_id: str, receipt: str,
                  events: list[dict[str, Any]]) -> ReceiptCheck:
    """Is receipt one of ours, for this tenant and subject, and does each decision it lists
    name an event of this chain with the same hash?"""
    text = receipt.strip()
    if not text or len(text) > 20000 or text.count(".") != 2:
        raise Invalid.field("receipt", "paste the receipt: a JWT of three dot-separated parts")
    try:
        claims = tokens.verify_service_token(text, deps.keys.jwks())
    except Exception as exc:  # whatever fails to verify (format, key, signature) is the answer itself
        return ReceiptCheck(False, f"the signature does not verify with the service's keys ({type(exc).__name__})")
    if claims.get("tenant_id") != tenant_id or claims.get("sub") != subject_id:
        return ReceiptCheck(True, "the receipt is genuine but was issued for another subject")
    hashes = {e["event_id"]: e["hash"] for e in events}
    decisions = [{**d, "in_chain": hashes.get(d.get("event_id")) == d.get("hash")}
                 for d in claims.get("decisions") or [] if isinstance(d, dict)]
    issued = claims.get("iat")
    return ReceiptCheck(True, None, str(issued) if issued is not None else None, decisions)


def erase(deps: Deps, tenant_id: str, subject_id: str, confirmation: str, key_id: str | None) -> None:
    """Erase after the officer typed the subject id again."""
    if confirmation.strip() != subject_id:
        raise Invalid.field("confirm", "type the subject id exactly to confirm the erasure")
    if deps.store.get_subject(tenant_id, subject_id) is None:
        raise NotFound("unknown subject")
    consents.erase(deps, tenant_id, subject_id, key_id)


def revoke_key(deps: Deps, tenant_id: str, key_id: str) -> ApiKey:
    """Revoke an API key; its console sessions end with it."""
    key = tenants.revoke_key(deps, tenant_id, key_id)
    deps.store.delete_sessions(tenant_id, key_id=key_id)
    return key


def all_keys(deps: Deps, tenant_id: str) -> list[ApiKey]:
    keys: list[ApiKey] = []
    after = None
    while page := deps.store.list_api_keys(tenant_id, after, 500):
        keys += page
        after = page[-1].id
    return keys
