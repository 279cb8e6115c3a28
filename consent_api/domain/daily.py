"""Per-day counters of a tenant's ledger, kept with every write so that GET /v1/stats never
scans the ledger: what one subject's events add to them (``tally``), once for every store.

A counter row is keyed by (day, purpose, policy_version) and holds
  grants, denies, withdrawals, prompts   events of that day (the event's own policy_version)
  allowed                                the change that day in the number of subjects whose
                                         last decision on the purpose is a grant still in force
                                         (not expired), filed under the grant's policy_version
  one count per channel                  decisions (grant, deny, withdraw) by source.channel
Summing ``allowed`` over every day up to D gives, per policy version, the subjects holding an
unexpired grant at the end of D; the reader (services/stats.py) counts those under a version
that a later material policy in effect by then has superseded as ``reconsent_required`` and the
others as ``allowed_subjects``, which is exactly what domain/status.py derives at that moment.

Expiry changes ``allowed`` without an event: a grant recorded at t of a purpose with
``validity_days`` V adds +1 on day(t) and -1 on day(t + V) at once; a later decision (or an
erasure) before t + V takes the grant back on its own day and cancels the scheduled -1. The V
used is the purpose's when the events are counted; after a purpose's ``validity_days`` changes,
``consent-api rebuild-state`` re-dates the expiries (``rebuild-state --check`` reports them).

Days are calendar days in Beijing time (Asia/Shanghai, UTC+8 without daylight saving since
1991): the product serves PIPL first, whose officers read days that way, and rights-request
deadlines (DESIGN.md §9.2) count in the same zone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta, timezone
from typing import Any

from consent_api.domain.clock import parse_ts
from consent_api.domain.model import Action, Channel, Purpose, PurposeRecord, SubjectRecord

TIMEZONE_NAME = "Asia/Shanghai"
ZONE = timezone(timedelta(hours=8), TIMEZONE_NAME)

COUNTS = ("grants", "denies", "withdrawals", "prompts", "allowed")
CHANNELS = tuple(str(c) for c in Channel)
FIELDS = COUNTS + CHANNELS  # the columns of a counter row, in this order
ALLOWED = COUNTS.index("allowed")
_DECISION_FIELD = {Action.GRANT: 0, Action.DENY: 1, Action.WITHDRAW: 2}
_PROMPTS = COUNTS.index("prompts")
_CHANNEL_FIELD = {channel: len(COUNTS) + i for i, channel in enumerate(CHANNELS)}

Key = tuple[str, str, str]  # (day "YYYY-MM-DD", purpose, policy_version or "")
Tally = dict[Key, list[int]]
Validity = Mapping[str, float | None]  # purpose key -> validity_days


def validity_of(purposes: Iterable[Purpose]) -> dict[str, float | None]:
    return {p.key: p.validity_days for p in purposes}


def day_of(moment: datetime) -> str:
    """The calendar day (Beijing time) a moment falls on."""
    return moment.astimezone(ZONE).date().isoformat()


def day_start(day: date) -> datetime:
    """The first instant of a calendar day (Beijing time), as an aware datetime."""
    return datetime(day.year, day.month, day.day, tzinfo=ZONE)


def today(now: datetime) -> date:
    return now.astimezone(ZONE).date()


def _bump(into: Tally, key: Key, index: int, n: int = 1) -> None:
    row = into.get(key)
    if row is None:
        row = into[key] = [0] * len(FIELDS)
    row[index] += n


def _expiry(validity: Validity, purpose: str, granted_at: datetime) -> datetime | None:
    days = validity.get(purpose)
    return granted_at + timedelta(days=days) if days is not None else None


def _take_back(into: Tally, validity: Validity, purpose: str, rec: PurposeRecord | None,
               at: datetime) -> None:
    """The last decision rec ends at `at`: if it was a grant still in force, count it out."""
    if rec is None or rec.action != Action.GRANT or rec.decided_at is None:
        return
    granted_at = parse_ts(rec.decided_at)
    expires = _expiry(validity, purpose, granted_at)
    if expires is not None and expires <= at:
        return  # already counted out on its expiry day
    version = rec.policy_version or ""
    _bump(into, (day_of(at), purpose, version), ALLOWED, -1)
    if expires is not None:
        _bump(into, (day_of(expires), purpose, version), ALLOWED, +1)  # cancel the scheduled expiry


def tally(base: SubjectRecord | None, events: Iterable[dict[str, Any]], validity: Validity,
          into: Tally | None = None) -> Tally:
    """Add to `into` what `events` (one subject's, in seq order, right after `base`) change in
    the counters; `base` None is a subject without events."""
    into = {} if into is None else into
    last: dict[str, PurposeRecord] = dict(base.purposes) if base is not None else {}
    for event in events:
        action = event["action"]
        purpose = event.get("purpose")
        if action == Action.ERASE:
            at = parse_ts(event["recorded_at"])
            for decided, rec in last.items():
                _take_back(into, validity, decided, rec, at)
            last = {}
            continue
        if purpose is None:
            continue  # events about the subject as a whole (requests) decide no purpose
        version = event.get("policy_version") or ""
        if action == Action.PROMPT:
            _bump(into, (day_of(parse_ts(event["recorded_at"])), purpose, version), _PROMPTS)
            continue
        field = _DECISION_FIELD.get(action)
        if field is None:
            continue
        at = parse_ts(event["recorded_at"])
        key = (day_of(at), purpose, version)
        _bump(into, key, field)
        channel = _CHANNEL_FIELD.get((event.get("source") or {}).get("channel") or "")
        if channel is not None:
            _bump(into, key, channel)
        _take_back(into, validity, purpose, last.get(purpose), at)
        if action == Action.GRANT:
            _bump(into, key, ALLOWED, +1)
            expires = _expiry(validity, purpose, at)
            if expires is not None:
                _bump(into, (day_of(expires), purpose, version), ALLOWED, -1)
        last[purpose] = PurposeRecord(action=action, decided_at=event["recorded_at"],
                                      policy_version=event.get("policy_version"))
    return into


def merge(into: Tally, more: Tally) -> Tally:
    for key, row in more.items():
        mine = into.get(key)
        if mine is None:
            into[key] = list(row)
        else:
            for i, n in enumerate(row):
                mine[i] += n
    return into


def nonzero(counts: Tally) -> Tally:
    """The rows that count something (a grant and its expiry on one day cancel out)."""
    return {key: row for key, row in counts.items() if any(row)}


def chain_tally(events: Iterable[dict[str, Any]], validity: Validity, into: Tally | None = None) -> Tally:
    """What a whole chain adds, from its first event: the recount rebuild-state compares with."""
    return tally(None, events, validity, into)

