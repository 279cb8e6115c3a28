"""Reading the console's HTML forms into the JSON documents the API's schemas validate, so a
form is checked exactly like the same request to the API (web/schemas/requests.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import request

from consent_api.errors import Invalid
from consent_api.web.pages.i18n import LOCALES, PAGE_ZONE


def text(name: str) -> str:
    return (request.form.get(name) or "").strip()


def optional(name: str) -> str | None:
    return text(name) or None


def flag(name: str) -> bool:
    """A checkbox: present (any value) when ticked."""
    return name in request.form


def lines(name: str) -> list[str]:
    """A textarea, one item a line; empty lines are left out."""
    return [line.strip() for line in (request.form.get(name) or "").splitlines() if line.strip()]


def chosen(name: str) -> list[str]:
    """The ticked values of a group of checkboxes sharing one name."""
    return [v for v in request.form.getlist(name) if v]


def number(name: str) -> float | None:
    raw = text(name)
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError as exc:
        raise Invalid.field(name, "not a number") from exc


def localized(prefix: str) -> dict[str, str]:
    """{locale: text} of the fields prefix_en, prefix_zh-CN that were filled in."""
    return {code: text(f"{prefix}_{code}") for code in LOCALES if text(f"{prefix}_{code}")}


def local_time(name: str) -> str | None:
    """A datetime-local field, read as China Standard Time, as RFC 3339."""
    raw = text(name)
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw).replace(tzinfo=PAGE_ZONE)
    except ValueError as exc:
        raise Invalid.field(name, "not a date and time") from exc
    return moment.isoformat(timespec="seconds")


def field_errors(exc: Invalid) -> dict[str, list[str]]:
    """The error's fields named as the form names them (title.en -> title_en)."""
    return {key.replace(".", "_"): messages for key, messages in (exc.errors or {"_body": [exc.detail]}).items()}


def values() -> dict[str, Any]:
    """What was sent, to fill the form again after an error."""
    return {key: (request.form.getlist(key) if len(request.form.getlist(key)) > 1 else request.form.get(key))
            for key in request.form if key != "csrf_token"}
