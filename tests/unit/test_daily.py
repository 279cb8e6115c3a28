"""What one subject's events add to the per-day counters (domain/daily.py): decisions by day,
purpose, policy version and channel, and the day-by-day change in subjects allowed, expiry and
erasure included. Days are Beijing days."""

from __future__ import annotations

from datetime import datetime, timezone

from consent_api.domain import daily
from consent_api.domain.ledger import seal
from consent_api.domain.model import SubjectRecord
from consent_api.domain.projection import apply_events
from tests.store.drafts import draft


def row(**counts: int) -> list[int]:
    return [counts.get(name, 0) for name in daily.FIELDS]


def chain(*drafts: dict) -> list[dict]:
    return seal(list(drafts), SubjectRecord("u1", "sr_1"))


def ts(text: str) -> dict:
    return {"recorded_at": text}


def test_days_are_beijing_calendar_days():
    assert daily.day_of(datetime(2026, 3, 1, 15, 59, 59, tzinfo=timezone.utc)) == "2026-03-01"
    assert daily.day_of(datetime(2026, 3, 1, 16, 0, tzinfo=timezone.utc)) == "2026-03-02"
    assert daily.TIMEZONE_NAME == "Asia/Shanghai"


def test_decisions_count_on_their_day_purpose_version_and_channel():
    events = chain(draft("push", **ts("2026-03-01T08:00:00.000000Z")),
                   draft("push", "prompt", **ts("2026-03-01T09:00:00.000000Z")),
                   draft("sms", "deny", policy_version="2025-09", **ts("2026-03-01T17:00:00.000000Z"),
                         source={"channel": "web"}))

    assert daily.chain_tally(events, {}) == {
        ("2026-03-01", "push", "2026-01"): row(grants=1, allowed=1, ios=1, prompts=1),
        ("2026-03-02", "sms", "2025-09"): row(denies=1, web=1),
    }


def test_a_withdrawal_takes_the_grant_back_under_the_grants_version():
    events = chain(draft("push", **ts("2026-03-01T08:00:00.000000Z")),
                   draft("push", "withdraw", policy_version="2026-02", **ts("2026-03-03T08:00:00.000000Z")))

    assert daily.chain_tally(events, {}) == {
        ("2026-03-01", "push", "2026-01"): row(grants=1, allowed=1, ios=1),
        ("2026-03-03", "push", "2026-02"): row(withdrawals=1, ios=1),
        ("2026-03-03", "push", "2026-01"): row(allowed=-1),
    }


def test_a_grant_with_a_validity_expires_on_the_day_its_validity_ends():
    events = chain(draft("push", **ts("2026-03-01T08:00:00.000000Z")))

    assert daily.chain_tally(events, {"push": 10}) == {
        ("2026-03-01", "push", "2026-01"): row(grants=1, allowed=1, ios=1),
        ("2026-03-11", "push", "2026-01"): row(allowed=-1),
    }


def test_a_new_grant_before_expiry_moves_the_expiry_and_one_after_it_counts_anew():
    renewed = chain(draft("push", **ts("2026-03-01T08:00:00.000000Z")),
                    draft("push", **ts("2026-03-05T08:00:00.000000Z")))
    late = chain(draft("push", **ts("2026-03-01T08:00:00.000000Z")),
                 draft("push", **ts("2026-03-20T08:00:00.000000Z")))

    assert daily.nonzero(daily.chain_tally(renewed, {"push": 10})) == {
        ("2026-03-01", "push", "2026-01"): row(grants=1, allowed=1, ios=1),
        ("2026-03-05", "push", "2026-01"): row(grants=1, ios=1),  # -1 and +1: still one subject
        ("2026-03-15", "push", "2026-01"): row(allowed=-1),       # the expiry of 03-11 cancelled
    }
    assert daily.nonzero(daily.chain_tally(late, {"push": 10})) == {
        ("2026-03-01", "push", "2026-01"): row(grants=1, allowed=1, ios=1),
        ("2026-03-11", "push", "2026-01"): row(allowed=-1),
        ("2026-03-20", "push", "2026-01"): row(grants=1, allowed=1, ios=1),
        ("2026-03-30", "push", "2026-01"): row(allowed=-1),
    }


def test_an_erasure_takes_back_every_grant_in_force_and_counts_no_decision():
    events = chain(draft("push", **ts("2026-03-01T08:00:00.000000Z")),
                   draft("sms", **ts("2026-03-01T08:00:00.000000Z")),
                   draft("sms", "withdraw", **ts("2026-03-02T08:00:00.000000Z")),
                   draft(None, "erase", **ts("2026-03-04T08:00:00.000000Z")))

    counts = daily.nonzero(daily.chain_tally(events, {"push": 2}))

    assert counts[("2026-03-03", "push", "2026-01")] == row(allowed=-1)  # expired before the erasure
    assert ("2026-03-04", "push", "2026-01") not in counts
    assert ("2026-03-04", "sms", "2026-01") not in counts


def test_counting_from_a_record_continues_where_the_chain_left_off():
    events = chain(draft("push", **ts("2026-03-01T08:00:00.000000Z")),
                   draft("push", "withdraw", **ts("2026-03-02T08:00:00.000000Z")))
    record = apply_events(SubjectRecord("u1", "sr_1"), events[:1])

    whole = daily.chain_tally(events, {"push": 30})
    in_two = daily.merge(daily.tally(None, events[:1], {"push": 30}), daily.tally(record, events[1:], {"push": 30}))

    assert daily.nonzero(in_two) == daily.nonzero(whole)
