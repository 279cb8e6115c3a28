"""Time as the service sees it: UTC, RFC 3339 with ``Z``, and clocks that tests can fix."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Callable

Clock = Callable[[], datetime]

_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


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
    return value.astimezone(timezone.utc).strftime(_FORMAT)


def parse_ts(value: str) -> datetime:
    """Parse RFC 3339; a value without an offset is refused rather than guessed."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError("timestamp needs a time zone offset, e.g. 2026-01-31T08:00:00Z")
    return parsed.astimezone(timezone.utc)
