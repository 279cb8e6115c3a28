"""GET /v1/stats: a tenant's decisions and allowed subjects per day and purpose, read from the
per-day counters the writes keep (domain/daily.py), never from the ledger; and the recount from
the ledger that rebuild-state compares them with.

``allowed_subjects`` of (day D, purpose P) is the number of subjects for whom P is allowed at the
end of D (Beijing time), as domain/status.py derives it at that moment from the events up to
then: their last decision on P is a grant, not expired (``validity_days``), and not made under a
policy version that a later ``material`` version in effect by then supersedes (those count as
``reconsent_required``). Erased subjects count until the day of their erasure.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from consent_api.domain import daily
from consent_api.domain.daily import Tally
from consent_api.domain.model import PolicyVersion
from consent_api.errors import Invalid
from consent_api.services.deps import Deps
from consent_api.store.port import DailyCounts, Store

DEFAULT_DAYS = 30
MAX_DAYS = 366
ALLOWED = daily.ALLOWED
CHANNELS_FROM = len(daily.COUNTS)
assert daily.COUNTS[:4] == ("grants", "denies", "withdrawals", "prompts")


@dataclass(frozen=True)
class Stats:
    timezone: str
    since: str
    until: str
    # one dict per (day, purpose): date, purpose, grants, denies, withdrawals, prompts,
    # allowed_subjects, reconsent_required, channels {channel: decisions}; plain dicts, because
    # a year of 20 purposes is 7,300 of them
    days: list[dict[str, Any]]


def stats(deps: Deps, tenant_id: str, since: date | None, until: date | None,
          purpose: str | None) -> Stats:
    """Dense rows, one per day of [since, until) up to today and purpose, ordered by day then key."""
    today = daily.today(deps.clock())
    try:
        until = until or (since + timedelta(days=DEFAULT_DAYS) if since else today + timedelta(days=1))
        since = since or until - timedelta(days=DEFAULT_DAYS)
    except OverflowError as exc:
        raise Invalid.field("since" if since else "until", "lies too close to the ends of the calendar") from exc
    if since >= until:
        raise Invalid.field("until", "must be a later day than since")
    if (until - since).days > MAX_DAYS:
        raise Invalid.field("until", f"at most {MAX_DAYS} days after since")
    keys = [p.key for p in deps.store.list_purposes(tenant_id)]
    if purpose is not None:
        if purpose not in keys:
            raise Invalid.field("purpose", f"unknown purpose {purpose!r}")
        keys = [purpose]
    counts = deps.store.daily_counts(tenant_id, since.isoformat(), until.isoformat(), purpose)
    return Stats(daily.TIMEZONE_NAME, since.isoformat(), until.isoformat(),
                 _rows(keys, counts, stale_from(deps.store.list_policies(tenant_id)),
                       _days(since, min(until, today + timedelta(days=1)))))


def _rows(keys: list[str], counts: DailyCounts, stale: dict[str, str], days: Iterable[str]) -> list[dict[str, Any]]:
    """Walk the days in order, carrying per purpose the subjects allowed and those whose grant
    is stale (a later material policy is in effect): a version's level moves from the first to
    the second on the day it becomes stale."""
    wanted = set(keys)
    level: dict[tuple[str, str], int] = defaultdict(int)  # (purpose, version) -> unexpired grants
    allowed: dict[str, int] = defaultdict(int)
    reconsent: dict[str, int] = defaultdict(int)
    stale_on: dict[str, list[str]] = defaultdict(list)  # day -> versions stale from its end on
    for version, day in stale.items():
        stale_on[day].append(version)
    by_day: dict[str, list[tuple[str, str, list[int]]]] = defaultdict(list)
    for (day, p, v), row in counts.rows.items():
        by_day[day].append((p, v, row))
    first = True
    out = []
    zero = [0] * len(daily.FIELDS)
    for day in days:
        if first:  # what came before the span, as it stands at its first day
            for (p, v), n in counts.opening.items():
                level[(p, v)] += n
                (reconsent if v in stale and stale[v] <= day else allowed)[p] += n
            first = False
        else:
            for v in stale_on.get(day, ()):
                for (p, version), n in level.items():
                    if version == v:
                        allowed[p] -= n
                        reconsent[p] += n
        sums: dict[str, list[int]] = {}
        for p, v, row in by_day.get(day, ()):
            delta = row[ALLOWED]
            if delta:
                level[(p, v)] += delta
                (reconsent if v in stale and stale[v] <= day else allowed)[p] += delta
            if p in wanted:
                have = sums.get(p)
                sums[p] = row if have is None else [a + b for a, b in zip(have, row, strict=True)]
        for p in keys:
            row = sums.get(p, zero)
            out.append({
                "date": day, "purpose": p, "grants": row[0], "denies": row[1], "withdrawals": row[2],
                "prompts": row[3], "allowed_subjects": allowed[p], "reconsent_required": reconsent[p],
                "channels": dict(zip(daily.CHANNELS, row[CHANNELS_FROM:], strict=True)),
            })
    return out


def _days(since: date, until: date) -> Iterator[str]:
    day = since
    while day < until:
        yield day.isoformat()
        day += timedelta(days=1)


def stale_from(policies: Sequence[PolicyVersion]) -> dict[str, str]:
    """Per policy version, the first day at whose end a later material version is in effect
    (a grant under it then needs re-consent); versions never superseded are absent."""
    out = {}
    for p in policies:
        later = [m.effective_at for m in policies if m.material and m.effective_at > p.effective_at]
        if later:
            out[p.version] = daily.day_of(min(later))
    return out


# --- the recount, for rebuild-state and migrate-store -----------------------------------------------

def recount(store: Store, tenant_id: str) -> Tally:
    """The tenant's counters counted again from every chain of its ledger (erased ones too)."""
    validity = daily.validity_of(store.list_purposes(tenant_id))
    counts: Tally = {}
    for chain in store.iter_chains(tenant_id):
        daily.chain_tally(store.subject_events(tenant_id, chain.subject_ref), validity, counts)
    return daily.nonzero(counts)


def stored(store: Store, tenant_id: str) -> Tally:
    return daily.nonzero(store.daily_counts(tenant_id, None, "9999-12-31").rows)


def differences(tenant_id: str, have: Tally, want: Tally) -> list[str]:
    """One line per counter row that the store holds differently from the recount."""
    lines = []
    for key in sorted(have.keys() | want.keys()):
        mine, right = have.get(key), want.get(key)
        if mine == right:
            continue
        fields = [f"{name} {a} (ledger: {b})" for name, a, b in zip(
            daily.FIELDS, mine or [0] * len(daily.FIELDS), right or [0] * len(daily.FIELDS), strict=True) if a != b]
        day, purpose, version = key
        lines.append(f"{tenant_id} {day} {purpose} policy {version or '-'}: {', '.join(fields)}")
    return lines
