"""The per-day counters, on every adapter: each append adds exactly what its events count, so the
counters always equal a recount from the ledger (services/stats.recount), concurrent writers,
erasure and expiry included; reads by span and purpose; replacement; tenant isolation."""

from __future__ import annotations

import threading

from consent_api.domain import daily
from consent_api.services import stats
from tests.store.drafts import append, draft, purpose, tenant


def row(**counts: int) -> list[int]:
    return [counts.get(name, 0) for name in daily.FIELDS]


def setup(store, tenant_id: str = "t1") -> None:
    store.create_tenant(tenant(tenant_id))
    store.put_purpose(tenant_id, purpose("push", validity_days=2))
    store.put_purpose(tenant_id, purpose("sms"))


def all_rows(store, tenant_id: str = "t1") -> dict:
    return stats.stored(store, tenant_id)


def test_appends_count_their_events_and_agree_with_a_recount(store):
    setup(store)
    append(store, "t1", "u1", draft("push"), draft("sms"))
    append(store, "t1", "u1", draft("sms", "withdraw", minutes=60), draft("push", "prompt", minutes=60))
    append(store, "t1", "u2", draft("push", "deny", minutes=600, source={"channel": "web"}))
    append(store, "t1", "u1", draft(None, "erase", minutes=24 * 60), erase=True)

    assert all_rows(store) == {
        ("2026-03-01", "push", "2026-01"): row(grants=1, allowed=1, ios=1, prompts=1),
        ("2026-03-01", "sms", "2026-01"): row(grants=1, withdrawals=1, ios=2),
        ("2026-03-02", "push", "2026-01"): row(denies=1, web=1, allowed=-1),  # u1's grant, erased on 03-02
    }
    assert all_rows(store) == stats.recount(store, "t1")


def test_concurrent_appends_to_the_same_subjects_are_each_counted_once(store):
    setup(store)

    def writer(n: int) -> None:
        for i in range(10):
            action = "grant" if (n + i) % 2 else "withdraw"
            append(store, "t1", f"u{i % 3}", draft("sms", action, minutes=i))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    counted = all_rows(store)
    assert counted == stats.recount(store, "t1")
    assert sum(r[0] + r[2] for r in counted.values()) == 40


def test_reads_take_a_span_of_days_with_the_allowed_sum_before_it(store):
    setup(store)
    append(store, "t1", "u1", draft("sms"))
    append(store, "t1", "u2", draft("sms", minutes=24 * 60))
    append(store, "t1", "u3", draft("push", minutes=2 * 24 * 60))

    span = store.daily_counts("t1", "2026-03-02", "2026-03-03")
    one = store.daily_counts("t1", "2026-03-02", "2026-03-04", "push")

    assert span.opening == {("sms", "2026-01"): 1}
    assert span.rows == {("2026-03-02", "sms", "2026-01"): row(grants=1, allowed=1, ios=1)}
    assert one.opening == {}
    assert one.rows == {("2026-03-03", "push", "2026-01"): row(grants=1, allowed=1, ios=1)}
    assert store.daily_counts("t1", None, "2026-03-02").rows.keys() == {("2026-03-01", "sms", "2026-01")}


def test_replacing_counters_replaces_one_tenants_only(store):
    setup(store, "t1")
    setup(store, "t2")
    append(store, "t1", "u1", draft("sms"))
    append(store, "t2", "u1", draft("sms", tenant_id="t2"))

    store.replace_daily_counts("t1", {("2026-02-01", "sms", ""): row(denies=3), ("2026-02-02", "sms", ""): row()})

    assert all_rows(store, "t1") == {("2026-02-01", "sms", ""): row(denies=3)}
    assert all_rows(store, "t2") == {("2026-03-01", "sms", "2026-01"): row(grants=1, allowed=1, ios=1)}
    store.replace_daily_counts("t1", stats.recount(store, "t1"))
    assert all_rows(store, "t1") == all_rows(store, "t2")


def test_counters_of_one_tenant_never_show_in_another(store):
    setup(store, "t1")
    setup(store, "t2")
    append(store, "t1", "u1", draft("sms"))

    assert store.daily_counts("t2", None, "9999-12-31").rows == {}
    assert store.daily_counts("t2", "2026-03-02", "2026-04-01").opening == {}
