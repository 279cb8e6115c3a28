"""The one JSON parser for documents a client sends: request bodies, cursors, token payloads.

Python's json module takes more than RFC 8259 text that every store and encoder downstream
can hold; each of these reached a store or an encoder and failed there (a 500) or was read
two ways. Refused here, whole, before anything looks at the document:

- ``NaN``, ``Infinity`` and ``-Infinity`` (not JSON numbers);
- a member name repeated in an object (parsers disagree on which one counts);
- a lone UTF-16 surrogate in any string, from an escape such as ``"\\ud800"`` (not text: it
  cannot be written as UTF-8, so SQLite, hashing and orjson all refuse it later);
- nesting deeper than MAX_DEPTH (no document of this API nests past 5; a deep one exhausted
  the parser's recursion or a later walk's).
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 32
_SURROGATE = re.compile("[\ud800-\udfff]")


class NotStrictJson(ValueError):
    """The text is not a JSON document this service takes; the message says why."""


def _no_constant(name: str) -> Any:
    raise NotStrictJson(f"{name} is not a JSON number")


def _unique_names(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    names = dict(pairs)
    if len(names) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise NotStrictJson(f"the member name {name!r} appears twice in an object")
            seen.add(name)
    return names


def is_text(value: str) -> bool:
    """Whether a string is Unicode text (no lone surrogate), so it can be stored and encoded."""
    return value.isascii() or _SURROGATE.search(value) is None


def loads(text: str | bytes) -> Any:
    """Parse a client's JSON document; NotStrictJson when it is not one (see the module doc)."""
    try:
        document = json.loads(text, parse_constant=_no_constant, object_pairs_hook=_unique_names)
    except RecursionError as exc:
        raise NotStrictJson(f"nested deeper than {MAX_DEPTH} levels") from exc
    except NotStrictJson:
        raise
    except (ValueError, UnicodeError) as exc:
        raise NotStrictJson(str(exc)) from exc
    _check(document)
    return document


def _check(document: Any) -> None:
    """Depth and text of every value, without recursion (a deep document must not recurse)."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if not is_text(value):
                raise NotStrictJson("a string holds a lone UTF-16 surrogate (\\ud800-\\udfff), which is not text")
        elif isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                raise NotStrictJson(f"nested deeper than {MAX_DEPTH} levels")
            items = value.items() if isinstance(value, dict) else ((None, v) for v in value)
            for name, item in items:
                if name is not None and not is_text(name):
                    raise NotStrictJson("a member name holds a lone UTF-16 surrogate, which is not text")
                stack.append((item, depth + 1))
