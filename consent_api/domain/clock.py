"""Time as the service sees it: UTC, RFC 3339 with ``Z``, and clocks that tests can fix."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

Clock = Callable[[], datetime]

_RFC3339 = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
                      r"([Zz]|[+-][0-9]{2}:[0-9]{2})\Z")


def system_clock() -> datetime:
    return datetime.now(timezone.utc)


class FixedClock:
    """A clock that stands still until told to move; tests use it for every rule."""

    def __init__(self, start: datetime | str):
        self.now = parse_ts(start) if isinstance(start, str) else start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now = self.now + timedelta(**delta)
        return self.now


def format_ts(value: datetime) -> str:
    """Fixed-width RFC 3339 UTC (microseconds, ``Z``) so that strings sort like times."""
    utc = value.astimezone(timezone.utc)
    # not strftime("%Y"): glibc writes year 1 as "1", which is neither RFC 3339 nor sortable
    return f"{utc.year:04d}-{utc:%m-%dT%H:%M:%S.%f}Z"


def parse_ts(value: str) -> datetime:
    """Parse RFC 3339; a value without an offset is refused rather than guessed."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError("timestamp needs a time zone offset, e.g. 2026-01-31T08:00:00Z")
    try:
        return parsed.astimezone(timezone.utc)
    except OverflowError as exc:  # 0001-01-01T00:00:00+01:00 lies before year 1 in UTC
        raise ValueError("timestamp lies outside the years 0001 to 9999 in UTC") from exc


def parse_rfc3339(value: str) -> datetime:
    """A client's timestamp: strictly RFC 3339 (date, ``T``, time, offset), as UTC."""
    if not _RFC3339.match(value):
        raise ValueError("must be an RFC 3339 timestamp such as 2026-03-01T08:00:00Z")
    return parse_ts(value)
