"""When a rights request must be answered (DESIGN.md §9.2, §9.6).

    due_at = 24:00 Asia/Shanghai at the end of the Nth counted day after the day of created_at
             (that day itself is not counted, as PRC law counts periods)

``cn_workdays`` counts PRC working days: Monday to Friday, less the statutory holidays, plus
the weekend days worked in lieu (调休), from the ``chinese-calendar`` package, which carries the
State Council's schedule for the years it knows. A day past those years is counted as a
weekday or not, and the answer says so (``estimated``) instead of failing. ``calendar_days``
counts every day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from enum import StrEnum
from zoneinfo import ZoneInfo

import chinese_calendar

SHANGHAI = ZoneInfo("Asia/Shanghai")
DEFAULT_DAYS = 15
MAX_DAYS = 90
# The years the package has the State Council's schedule for.
KNOWN_YEARS = range(min(chinese_calendar.holidays).year, max(chinese_calendar.holidays).year + 1)


class DayCount(StrEnum):
    CN_WORKDAYS = "cn_workdays"
    CALENDAR_DAYS = "calendar_days"


@dataclass(frozen=True)
class Deadline:
    """A tenant's answer period: ``days`` counted days (1..90)."""

    days: int = DEFAULT_DAYS
    calendar: str = DayCount.CN_WORKDAYS

    def to_dict(self) -> dict[str, object]:
        return {"days": self.days, "calendar": str(self.calendar)}


@dataclass(frozen=True)
class Due:
    at: datetime  # UTC: 24:00 Asia/Shanghai of last_day
    last_day: date  # the last counted day, in Asia/Shanghai
    estimated: bool  # some counted day lies past the calendar's known years


def is_workday(day: date) -> tuple[bool, bool]:
    """(is it a PRC working day, is that an estimate because the year is unknown)."""
    if day.year in KNOWN_YEARS:
        return chinese_calendar.is_workday(day), False
    return day.weekday() < 5, True


def counts(day: date, calendar: str) -> tuple[bool, bool]:
    """(is day counted under calendar, is that an estimate)."""
    if calendar == DayCount.CALENDAR_DAYS:
        return True, False
    return is_workday(day)


def local_day(moment: datetime) -> date:
    return moment.astimezone(SHANGHAI).date()


def end_of(day: date) -> datetime:
    """24:00 Asia/Shanghai of day, in UTC."""
    return datetime.combine(day + timedelta(days=1), time(0), SHANGHAI).astimezone(timezone.utc)


def due(created_at: datetime, deadline: Deadline) -> Due:
    """The deadline of a request made at created_at."""
    day, counted, estimated = local_day(created_at), 0, False
    while counted < deadline.days:
        day += timedelta(days=1)
        yes, guessed = counts(day, deadline.calendar)
        if yes:
            counted += 1
            estimated = estimated or guessed
        elif guessed:  # a day not counted by guess may be a working day in lieu
            estimated = True
    return Due(end_of(day), day, estimated)


def days_left(now: datetime, due_at: datetime, calendar: str) -> int:
    """Counted days still open before due_at: today (if counted) through the last day; 0 once
    due_at has passed."""
    if now >= due_at:
        return 0
    day, last = local_day(now), local_day(due_at - timedelta(microseconds=1))
    left = 0
    while day <= last:
        left += counts(day, calendar)[0]
        day += timedelta(days=1)
    return left
