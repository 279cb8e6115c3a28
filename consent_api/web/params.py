"""Query-string parsing with the same 422 answers as bodies."""

from __future__ import annotations

from datetime import datetime

from flask import request

from consent_api.domain.clock import parse_rfc3339
from consent_api.errors import Invalid

KNOWN_PAGE_PARAMS = ("cursor", "limit")


def _arg(name: str) -> str | None:
    # request.args parses the query string into a MultiDict even when there is none; the hot
    # reads have none, and skipping the parse saved ~5% of a state read.
    return request.args.get(name) if request.query_string else None


def query_int(name: str) -> int | None:
    raw = _arg(name)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError as exc:
        raise Invalid.field(name, "must be an integer") from exc


def query_time(name: str) -> datetime | None:
    raw = _arg(name)
    if raw is None:
        return None
    try:
        return parse_rfc3339(raw)
    except ValueError as exc:
        raise Invalid.field(name, str(exc)) from exc


def page_args() -> tuple[str | None, int | None]:
    return _arg("cursor"), query_int("limit")
