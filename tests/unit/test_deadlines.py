"""When a rights request is due, over dates whose answer is known from the State Council's 2026
schedule (as chinese-calendar carries it): 2026-09-25..27 Mid-Autumn, 2026-10-01..07 National
Day, Sunday 2026-09-20 and Saturday 2026-10-10 worked in lieu (调休)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import chinese_calendar
import pytest

from consent_api.domain import deadlines
from consent_api.domain.deadlines import Deadline, due


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(timezone.utc)


def test_the_package_knows_2026_with_its_adjusted_working_days():
    """The facts the tests below count on; if a new package release changed them, they say so."""
    assert 2026 in deadlines.KNOWN_YEARS
    assert chinese_calendar.is_workday(date(2026, 10, 10))  # a Saturday worked in lieu
    assert chinese_calendar.is_workday(date(2026, 9, 20))  # a Sunday worked in lieu
    assert not any(chinese_calendar.is_workday(date(2026, 10, d)) for d in range(1, 8))


def test_a_request_before_national_day_counts_the_saturday_worked_in_lieu():
    """Wed 30 Sep: 8, 9, Sat 10 (调休), 12-16, 19-23, 26, 27 Oct are the 15 working days."""
    found = due(at("2026-09-30T10:00:00+08:00"), Deadline())
    assert found.last_day == date(2026, 10, 27)
    assert found.at == at("2026-10-28T00:00:00+08:00") == at("2026-10-27T16:00:00Z")
    assert not found.estimated


def test_a_friday_request_starts_counting_on_the_next_working_day():
    """Fri 18 Sep: Sun 20 (调休) is the first; Mid-Autumn and National Day are skipped."""
    assert due(at("2026-09-18T15:00:00+08:00"), Deadline()).last_day == date(2026, 10, 15)
    # a plain Friday: Monday is the first of 15, three weeks later is the last
    assert due(at("2026-03-06T09:00:00+08:00"), Deadline()).last_day == date(2026, 3, 27)


def test_the_day_is_the_one_in_shanghai_not_in_utc():
    """23:30 UTC on Tuesday 29 Sep is already Wednesday 30 Sep in Shanghai."""
    assert due(at("2026-09-29T16:30:00Z"), Deadline()) == due(at("2026-09-30T08:00:00+08:00"), Deadline())
    assert due(at("2026-09-29T15:59:59Z"), Deadline()).last_day == date(2026, 10, 26)


def test_calendar_days_count_every_day_holidays_included():
    found = due(at("2026-09-30T10:00:00+08:00"), Deadline(15, "calendar_days"))
    assert found.last_day == date(2026, 10, 15) and not found.estimated
    assert due(at("2026-02-27T10:00:00+08:00"), Deadline(1, "calendar_days")).last_day == date(2026, 2, 28)


def test_past_the_known_years_weekdays_are_counted_and_the_answer_says_estimated():
    beyond = max(deadlines.KNOWN_YEARS) + 1
    found = due(datetime(beyond, 6, 1, 2, tzinfo=timezone.utc), Deadline())
    weekdays = [d for d in (date(beyond, 6, 2) + timedelta(days=n) for n in range(40)) if d.weekday() < 5]
    assert found.estimated
    assert found.last_day == weekdays[14]


def test_a_deadline_that_runs_into_an_unknown_year_is_estimated():
    last_known = max(deadlines.KNOWN_YEARS)
    found = due(datetime(last_known, 12, 24, 2, tzinfo=timezone.utc), Deadline())
    assert found.estimated and found.last_day.year == last_known + 1
    inside = due(datetime(last_known, 11, 2, 2, tzinfo=timezone.utc), Deadline())
    assert not inside.estimated and inside.last_day.year == last_known


@pytest.mark.parametrize(("now", "left"), [
    ("2026-10-23T09:00:00+08:00", 3),  # Fri 23: 23, 26, 27
    ("2026-10-24T09:00:00+08:00", 2),  # Sat 24: 26, 27
    ("2026-10-26T23:00:00+08:00", 2),  # Mon 26 (not over yet): 26, 27
    ("2026-10-27T09:00:00+08:00", 1),
    ("2026-10-28T00:00:00+08:00", 0),  # due_at itself
])
def test_counted_days_left_before_a_deadline(now, left):
    due_at = at("2026-10-27T16:00:00Z")
    assert deadlines.days_left(at(now), due_at, "cn_workdays") == left


def test_calendar_day_mode_counts_days_left_by_calendar():
    assert deadlines.days_left(at("2026-10-01T09:00:00+08:00"), at("2026-10-02T16:00:00Z"), "calendar_days") == 2
