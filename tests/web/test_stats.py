"""GET /v1/stats on both stores: after a mixed workload (grants, denies, withdrawals, withdraw-all,
prompts, erasure, expiry, a material policy, a re-grant after expiry) every row equals a recount
made from the audit export with the state rules themselves (projection + status at the end of
each Beijing day), and rebuild-state finds nothing to fix; then the query's rules and scopes."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import date, timedelta

import pytest

from consent_api.domain import daily
from consent_api.domain.clock import format_ts, parse_ts
from consent_api.domain.model import PolicyVersion, Purpose, Status
from consent_api.domain.projection import project
from consent_api.domain.status import Policies, purpose_state
from consent_api.services.rebuild import rebuild_state
from tests.builders import make_purpose
from tests.support.apps import ON_BOTH_STORES

pytestmark = ON_BOTH_STORES

CATALOG = {
    "push": make_purpose(),
    "cookies": make_purpose("cookie", validity_days=2, title={"en": "Analytics cookies", "zh-CN": "统计 Cookie"}),
    "sms": make_purpose("marketing", title={"en": "Marketing SMS", "zh-CN": "营销短信"}),
}


def stats(tenant, token=None, expect=200, **query):
    return tenant.get("/v1/stats", token=token, query=query, expect=expect).get_json()


def workload(tenant, clock) -> None:
    """Four Beijing days of decisions; START is 16:00 Beijing time on 2026-03-01."""
    tenant.grant("alice", "push", "cookies", "sms")
    tenant.decide("bob", channel="web", push=True, sms=False)
    tenant.prompt("carol", "push")
    tenant.refuse("carol", "push", channel="android")
    clock.advance(hours=6)                                       # 22:00, 03-01
    tenant.grant("dave", "cookies")
    clock.advance(hours=3)                                       # 01:00, 03-02
    tenant.refuse("bob", "push", channel="web")                  # a withdrawal
    tenant.post("/v1/subjects/alice/consents/withdraw-all", {"source": {"channel": "ios"}}, expect=200)
    tenant.grant("alice", "push")
    tenant.grant("erin", "push", "sms", channel="miniprogram")
    clock.advance(hours=2)
    tenant.erase("erin")
    tenant.policy("2026-03", effective_at=format_ts(clock.now), material=True)
    tenant.grant("frank", "push", policy_version="2026-03")
    clock.advance(days=2, hours=12)                              # 15:00, 03-04: dave's cookies expired 03-03
    tenant.grant("dave", "cookies", policy_version="2026-03")
    tenant.refuse("alice", "push", policy_version="2026-03", channel="android")


def recount(tenant, since: date, today: date) -> dict[tuple[str, str], dict]:
    """What each row must say, from the export and the catalog, by the state rules."""
    events = [json.loads(line) for line in tenant.export().splitlines()]
    purposes = [Purpose.from_dict(p) for p in tenant.get("/v1/purposes").get_json()["items"]]
    policies = Policies([PolicyVersion.from_dict(p) for p in tenant.get("/v1/policies").get_json()["items"]])
    chains = defaultdict(list)
    for e in sorted(events, key=lambda e: (e["subject_ref"], e["seq"])):
        chains[e["subject_ref"]].append(e)
    rows = {}
    day = since
    while day <= today:
        end = daily.day_start(day + timedelta(days=1))
        todays = [e for e in events if daily.day_of(parse_ts(e["recorded_at"])) == day.isoformat()]
        for purpose in purposes:
            mine = [e for e in todays if e["purpose"] == purpose.key]
            actions = Counter(e["action"] for e in mine)
            states = []
            for ref, chain in chains.items():
                before = [e for e in chain if e["recorded_at"] < format_ts(end)]
                if before and before[-1]["action"] != "erase":
                    record = project("someone", ref, before)
                    states.append(purpose_state(purpose, record.purposes.get(purpose.key), policies,
                                                end - timedelta(microseconds=1)).status)
            rows[(day.isoformat(), purpose.key)] = {
                "grants": actions["grant"], "denies": actions["deny"], "withdrawals": actions["withdraw"],
                "prompts": actions["prompt"],
                "allowed_subjects": states.count(Status.GRANTED),
                "reconsent_required": states.count(Status.RECONSENT_REQUIRED),
                "channels": {c: sum(1 for e in mine if e["action"] in ("grant", "deny", "withdraw")
                                    and e["source"]["channel"] == c) for c in daily.CHANNELS},
            }
        day += timedelta(days=1)
    return rows


def test_every_row_equals_a_recount_from_the_export_by_the_state_rules(app, new_tenant, clock, api):
    tenant = new_tenant(purposes=CATALOG)
    workload(tenant, clock)

    answer = api.get("/v1/stats", token=tenant.admin, query={"since": "2026-02-27", "until": "2026-03-08"},
                     expect=200).get_json()

    today = daily.today(clock.now)
    assert (answer["timezone"], answer["since"], answer["until"]) == ("Asia/Shanghai", "2026-02-27", "2026-03-08")
    got = {(r["date"], r["purpose"]): {k: v for k, v in r.items() if k not in ("date", "purpose")}
           for r in answer["days"]}
    assert [(r["date"], r["purpose"]) for r in answer["days"]] == sorted(got)  # by day, then purpose
    assert max(d for d, _ in got) == today.isoformat() == "2026-03-04"   # no rows after today
    assert got == recount(tenant, date(2026, 2, 27), today)
    # the workload did exercise what the counters must get right
    assert got[("2026-03-01", "cookies")]["allowed_subjects"] == 2
    assert got[("2026-03-02", "cookies")]["reconsent_required"] == 1         # dave, under 2026-01
    assert got[("2026-03-03", "cookies")]["reconsent_required"] == 0         # expired, no event that day
    assert got[("2026-03-02", "push")]["reconsent_required"] == 1            # alice, under 2026-01
    assert got[("2026-03-02", "push")]["withdrawals"] == 2
    assert got[("2026-03-02", "sms")]["allowed_subjects"] == 0               # erin erased
    assert got[("2026-03-01", "push")]["prompts"] == 1
    store = app.extensions["consent_api.deps"].store
    assert rebuild_state(store, fix=False).count_differences == []


def test_defaults_are_the_30_days_ending_today(tenant, clock):
    tenant.grant("u1", "push")

    answer = stats(tenant)

    assert (answer["since"], answer["until"]) == ("2026-01-31", "2026-03-02")
    assert len(answer["days"]) == 30 and answer["days"][-1]["date"] == "2026-03-01"
    assert answer["days"][-1]["allowed_subjects"] == 1 and answer["days"][-2]["allowed_subjects"] == 0
    assert stats(tenant, since="2026-02-20")["until"] == "2026-03-22"


def test_one_purpose_and_a_past_span_carry_the_subjects_allowed_before_it(tenant, clock):
    tenant.purpose("sms", kind="marketing")
    tenant.grant("u1", "push", "sms")
    clock.advance(days=3)

    answer = stats(tenant, since="2026-03-03", until="2026-03-05", purpose="push")

    assert [(r["date"], r["purpose"], r["grants"], r["allowed_subjects"]) for r in answer["days"]] == [
        ("2026-03-03", "push", 0, 1), ("2026-03-04", "push", 0, 1)]


@pytest.mark.parametrize("query, field", [
    ({"since": "2026-03-01", "until": "2026-03-01"}, "until"),
    ({"since": "2025-01-01", "until": "2026-01-03"}, "until"),
    ({"since": "2026-3-1"}, "since"),
    ({"until": "20260301"}, "until"),
    ({"since": "2026-02-30"}, "since"),
    ({"purpose": "nope"}, "purpose"),
    ({"from": "2026-03-01"}, "from"),
    ({"since": "9999-12-31"}, "since"),
    ({"until": "0001-01-01"}, "until"),
])
def test_bad_queries_are_422_naming_the_parameter(tenant, query, field):
    problem = stats(tenant, expect=422, **query)
    assert field in problem["errors"]


def test_read_and_audit_keys_see_stats_and_other_credentials_do_not(tenant):
    tenant.issue_every_role()
    assert stats(tenant, token=tenant.reader)["days"]
    assert stats(tenant, token=tenant.auditor)["days"]
    stats(tenant, token=tenant.writer, expect=403)
    tenant.get("/v1/stats", token="sk_unknown", expect=401)


def test_another_tenants_decisions_never_show(new_tenant):
    mine, theirs = new_tenant("Mine"), new_tenant("Theirs")
    theirs.grant("u1", "push")

    assert all(r["grants"] == 0 and r["allowed_subjects"] == 0 for r in stats(mine)["days"])
    assert stats(theirs)["days"][-1]["grants"] == 1


def test_the_counters_do_not_scan_the_ledger(app, tenant):
    """The answer reads counter rows only: with the events gone, it stays the same."""
    tenant.grant("u1", "push")
    before = stats(tenant)
    store = app.extensions["consent_api.deps"].store

    store.export_events = None  # type: ignore[method-assign]  # any ledger read now fails
    store.subject_events = None  # type: ignore[method-assign]

    assert stats(tenant) == before
