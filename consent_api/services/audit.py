"""Auditor exports: the tenant's events as NDJSON or CSV, and a signed manifest over them.

An NDJSON line is the event with its keys sorted, compact separators, raw UTF-8, so that
``canonical(line without hash and subject_id)`` is exactly the byte string the hash chain
covers (DESIGN.md §4). A CSV row has the columns of ``CSV_COLUMNS`` (``EVENT_FIELDS``, then the
fields only a rights request's events carry, empty on every other row), nested fields as the
same canonical JSON text, null as an empty cell, booleans as ``true``/``false``.

Rows come from ``Store.export_events`` one at a time and leave in ~64 KiB chunks, so an
export of any size runs in constant memory. The manifest streams the same rows once and
hashes both formats on the way; only ``chain_heads`` grows, with the number of subjects.

Resuming: the order (recorded_at, seq, event_id) is a total order made of three fields every
row carries, so the cursor of a row is computable from the row itself: ``cursor_of(event)``
is ``base64url(JSON [recorded_at, seq, event_id])`` without padding. A client that lost the
connection passes the cursor of its last complete line as ``?cursor=`` and receives exactly
the rest, byte for byte; the parts concatenated equal the uninterrupted export.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, BinaryIO

from consent_api.domain.clock import format_ts
from consent_api.domain.ledger import export_line
from consent_api.domain.model import EVENT_FIELDS, PURPOSE_KEY, SUBJECT_ID
from consent_api.domain.requests import REQUEST_FIELDS
from consent_api.errors import Conflict, Invalid
from consent_api.services.deps import Deps
from consent_api.services.pages import decode_cursor, encode_cursor
from consent_api.store.port import ExportCursor, ExportFilter

NDJSON = "ndjson"
CSV_COLUMNS = EVENT_FIELDS + REQUEST_FIELDS
CSV = "csv"
CONTENT_TYPES = {NDJSON: "application/x-ndjson", CSV: "text/csv; charset=utf-8"}
CHUNK_BYTES = 64 * 1024
SUBJECT_REF = re.compile(r"^[A-Za-z0-9_-]{1,128}\Z")
MAX_SEQ = 2**63 - 1  # SQLite INTEGER and BSON int64


@dataclass(frozen=True)
class ExportQuery:
    """What the caller asked for; ``since`` inclusive and ``until`` exclusive, on recorded_at."""

    since: datetime | None = None
    until: datetime | None = None
    purpose: str | None = None
    subject_id: str | None = None
    subject_ref: str | None = None
    cursor: str | None = None


@dataclass(frozen=True)
class ExportPlan:
    """A validated query: the filters as the manifest states them, and the store filter
    (None when nothing can match, e.g. an unknown subject id)."""

    filters: dict[str, Any]
    store_filter: ExportFilter | None


@dataclass(frozen=True)
class Export:
    content_type: str
    chunks: Iterator[bytes]


# --- rows ----------------------------------------------------------------------------------------

_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# One export line: the event, keys sorted, compact, raw UTF-8, newline-terminated.
ndjson_line = export_line


def _cell(value: Any) -> str:
    """A value as CSV text before quoting: null empty, booleans as in JSON, nested values as
    canonical JSON text."""
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (dict, list)):
        return _CANONICAL.encode(value)
    return str(value)


def _quoted(text: str) -> str:
    # RFC 4180, exactly as csv.writer's QUOTE_MINIMAL (a property test holds them equal);
    # by hand because the csv module costs twice as much per row here.
    if '"' in text or "," in text or "\n" in text or "\r" in text:
        return '"' + text.replace('"', '""') + '"'
    return text


class CsvRows:
    """Renders events as CSV records (RFC 4180, CRLF, the columns of CSV_COLUMNS). One instance
    per export: it remembers the text of recurring nested values (source, actor, evidence
    repeat across most events), which is most of a row's cost."""

    def __init__(self) -> None:
        self._nested: dict[Any, str] = {}

    def __call__(self, event: dict[str, Any]) -> bytes:
        cells = []
        for name in CSV_COLUMNS:
            value = event.get(name)
            if value is None:
                cells.append("")
            elif type(value) is str:
                cells.append(_quoted(value))
            elif type(value) is dict:
                cells.append(self._dict_cell(value))
            else:
                cells.append(_quoted(_cell(value)))
        return (",".join(cells) + "\r\n").encode("utf-8")

    def _dict_cell(self, value: dict[str, Any]) -> str:
        try:  # the type is part of the key: True == 1 == 1.0 in Python, not in JSON
            key = tuple((k, v.__class__, v) for k, v in sorted(value.items()))
            hash(key)
        except TypeError:  # a nested list or dict inside: not worth remembering
            return _quoted(_cell(value))
        text = self._nested.get(key)
        if text is None:
            if len(self._nested) > 4096:
                self._nested.clear()
            text = self._nested[key] = _quoted(_cell(value))
        return text


CSV_HEADER = (",".join(CSV_COLUMNS) + "\r\n").encode("ascii")


def csv_row(event: dict[str, Any]) -> bytes:
    """One CSV record; exports use a CsvRows instance instead."""
    return CsvRows()(event)


def cursor_of(event: dict[str, Any]) -> str:
    """The cursor that resumes an export right after this event."""
    return encode_cursor([event["recorded_at"], event["seq"], event["event_id"]])


def _chunked(pieces: Iterable[bytes]) -> Iterator[bytes]:
    buffer: list[bytes] = []
    size = 0
    for piece in pieces:
        buffer.append(piece)
        size += len(piece)
        if size >= CHUNK_BYTES:
            yield b"".join(buffer)
            buffer, size = [], 0
    if buffer:
        yield b"".join(buffer)


# --- planning ------------------------------------------------------------------------------------

def check_format(fmt: str | None) -> str:
    fmt = NDJSON if fmt is None else fmt
    if fmt not in CONTENT_TYPES:
        raise Invalid.field("format", "one of ndjson, csv")
    return fmt


def plan(deps: Deps, tenant_id: str, query: ExportQuery) -> ExportPlan:
    """Validate the query (Invalid on any bad field) and resolve subject_id to its chain."""
    errors: dict[str, list[str]] = {}
    since = format_ts(query.since) if query.since else None
    until = format_ts(query.until) if query.until else None
    if since and until and until <= since:
        errors["until"] = ["must be later than since"]
    if query.purpose is not None and not PURPOSE_KEY.match(query.purpose):
        errors["purpose"] = ["must match ^[a-z][a-z0-9_.-]{0,63}$"]
    if query.subject_id is not None and not SUBJECT_ID.match(query.subject_id):
        errors["subject_id"] = ["must match ^[A-Za-z0-9._:@+-]{1,128}$"]
    if query.subject_ref is not None and not SUBJECT_REF.match(query.subject_ref):
        errors["subject_ref"] = ["not a subject_ref of this API"]
    after = None
    try:
        after = _decode_export_cursor(query.cursor)
    except Invalid as exc:
        errors.update(exc.errors or {})
    if errors:
        raise Invalid("invalid export parameters: " + ", ".join(sorted(errors)), errors=errors)

    filters = {"since": since, "until": until, "purpose": query.purpose,
               "subject_id": query.subject_id, "subject_ref": query.subject_ref}
    subject_ref = query.subject_ref
    if query.subject_id is not None:
        record = deps.store.get_subject(tenant_id, query.subject_id)
        if record is None or (subject_ref is not None and subject_ref != record.subject_ref):
            return ExportPlan(filters, None)
        subject_ref = record.subject_ref
    return ExportPlan(filters, ExportFilter(since=since, until=until, purpose=query.purpose,
                                            subject_ref=subject_ref, after=after))


def _decode_export_cursor(cursor: str | None) -> ExportCursor | None:
    if cursor is None:
        return None
    value = decode_cursor(cursor)
    if (not isinstance(value, list) or len(value) != 3 or not _cursor_text(value[0], 64)
            or type(value[1]) is not int or not 0 <= value[1] <= MAX_SEQ
            or not _cursor_text(value[2], 128)):
        raise Invalid.field("cursor", "not a cursor of this export: base64url of [recorded_at, seq, "
                                      "event_id] taken from a line")
    return ExportCursor(recorded_at=value[0], seq=value[1], event_id=value[2])


def _cursor_text(value: object, max_length: int) -> bool:
    """A string the stores can compare: bounded, and UTF-8 encodable (no lone surrogates)."""
    if not isinstance(value, str) or len(value) > max_length:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def events(deps: Deps, tenant_id: str, export_plan: ExportPlan) -> Iterator[dict[str, Any]]:
    """The planned events in export order, streamed from the store."""
    if export_plan.store_filter is None:
        return iter(())
    return deps.store.export_events(tenant_id, export_plan.store_filter)


def count(deps: Deps, tenant_id: str, export_plan: ExportPlan) -> int | None:
    """The number of planned events, if the store can count cheaply (for progress bars)."""
    if export_plan.store_filter is None:
        return 0
    return deps.store.count_events(tenant_id, export_plan.store_filter)


# --- the two answers -------------------------------------------------------------------------

def export(deps: Deps, tenant_id: str, query: ExportQuery, fmt: str | None = None) -> Export:
    """Validate, start the query and read the first chunk now; stream the rest as it is read.

    Once the first byte is sent, an error can only cut the body short; reading the first chunk
    here turns every failure at the start (bad arguments, a store that does not answer) into a
    problem answer instead."""
    fmt = check_format(fmt)
    export_plan = plan(deps, tenant_id, query)
    chunks = _chunked(_rows(deps, tenant_id, export_plan, fmt, query))
    first = next(chunks, None)
    return Export(CONTENT_TYPES[fmt], itertools.chain([first], chunks) if first is not None else iter(()))


def _rows(deps: Deps, tenant_id: str, export_plan: ExportPlan, fmt: str,
          query: ExportQuery) -> Iterator[bytes]:
    if fmt == CSV:
        if query.cursor is None:
            yield CSV_HEADER
        row = CsvRows()
        for event in events(deps, tenant_id, export_plan):
            yield row(event)
    elif export_plan.store_filter is not None:
        for lines in deps.store.export_lines(tenant_id, export_plan.store_filter):
            yield from lines


@dataclass
class ManifestBuilder:
    """Accumulates count, both digests and chain heads while rows go by, in export order."""

    count: int = 0
    heads: dict[str, str] = field(default_factory=dict)
    _ndjson: Any = field(default_factory=hashlib.sha256)
    _csv: Any = field(default_factory=lambda: hashlib.sha256(CSV_HEADER))
    _rows: CsvRows = field(default_factory=CsvRows)

    def add(self, event: dict[str, Any], line: bytes | None = None, row: bytes | None = None) -> None:
        self._ndjson.update(line if line is not None else ndjson_line(event))
        self._csv.update(row if row is not None else self._rows(event))
        self.heads[event["subject_ref"]] = event["hash"]
        self.count += 1

    def payload(self, issuer: str, tenant_id: str, filters: dict[str, Any],
                issued_at: datetime) -> dict[str, Any]:
        return {
            "iss": issuer, "tenant_id": tenant_id, "filters": dict(filters), "count": self.count,
            "sha256": self._ndjson.hexdigest(), "sha256_csv": self._csv.hexdigest(),
            "chain_heads": self.heads, "issued_at": format_ts(issued_at),
        }


def sign_manifest(deps: Deps, tenant_id: str, filters: dict[str, Any], builder: ManifestBuilder) -> str:
    """The manifest as a compact JWS signed with the service key (kid in the header)."""
    return deps.keys.sign(builder.payload(deps.issuer, tenant_id, filters, deps.clock()), typ="JWT")


def manifest(deps: Deps, tenant_id: str, query: ExportQuery, fmt: str | None = None) -> str:
    """Stream the export once, hashing both formats, and sign what was seen. ``format`` is
    accepted so the export's query string can be reused; the manifest covers both."""
    check_format(fmt)
    if query.cursor is not None:
        raise Invalid.field("cursor", "a manifest covers the whole export; send no cursor")
    export_plan = plan(deps, tenant_id, query)
    builder = ManifestBuilder()
    for event in events(deps, tenant_id, export_plan):
        builder.add(event)
    return sign_manifest(deps, tenant_id, export_plan.filters, builder)


# --- writing an export file (the CLI) ------------------------------------------------------------

@dataclass(frozen=True)
class Written:
    count: int  # events in the file
    kept: int  # of which were already in the file (resume)
    manifest: str  # the signed manifest of the whole file


def write_export(deps: Deps, tenant_id: str, export_plan: ExportPlan, fmt: str, fh: BinaryIO, *,
                 resume: bool = False, progress: Callable[[int], None] | None = None) -> Written:
    """Write the planned export to fh (opened r+b or w+b) and sign a manifest of it, in one pass.

    With resume, the store is read from the start again and the file's bytes are compared
    with what it yields: every complete line that matches is kept, a torn last line is
    replaced, the rest is appended. A file that differs from the store's export raises
    Conflict, because a manifest must describe exactly the bytes on disk."""
    fmt = check_format(fmt)
    builder, csv_rows = ManifestBuilder(), CsvRows()
    comparing, offset, kept, number = resume, 0, 0, 0
    fh.seek(0)

    def put(piece: bytes) -> bool:
        """Write or match one line; True when it was already in the file."""
        nonlocal comparing, offset
        if comparing:
            found = fh.read(len(piece))
            if found == piece:
                offset += len(piece)
                return True
            if not piece.startswith(found):
                raise Conflict(f"{'row' if fmt == CSV else 'line'} {number} of the file is not what "
                               "the store exports for these filters; export again without --resume")
            comparing = False
            fh.seek(offset)
            fh.truncate()
        fh.write(piece)
        return False

    if fmt == CSV:
        number = 1
        put(CSV_HEADER)
    for event in events(deps, tenant_id, export_plan):
        number += 1
        line, row = ndjson_line(event), csv_rows(event)
        kept += put(row if fmt == CSV else line)
        builder.add(event, line, row)
        if progress is not None and builder.count % 1000 == 0:
            progress(builder.count)
    if comparing and fh.read(1):
        raise Conflict("the file holds more than the store exports for these filters; "
                       "export again without --resume")
    fh.truncate()
    if progress is not None:
        progress(builder.count)
    return Written(builder.count, kept, sign_manifest(deps, tenant_id, export_plan.filters, builder))
