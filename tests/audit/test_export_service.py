"""services.audit without HTTP: the cheap count the progress bar uses agrees with the export."""

from __future__ import annotations

import csv
import io
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consent_api.domain import ledger
from consent_api.domain.clock import parse_ts
from consent_api.domain.model import EVENT_FIELDS
from consent_api.errors import Unavailable
from consent_api.services import audit
from tests.audit.ledger import lines


@pytest.mark.parametrize("query", [
    {}, {"purpose": "location"}, {"subject_id": "alice"}, {"subject_id": "nobody"},
    {"since": "2026-03-02T08:05:00Z", "until": "2026-03-02T09:10:00Z"},
])
def test_count_agrees_with_the_export(ledger, query):
    deps = ledger.client.application.extensions["consent_api.deps"]
    typed = {k: parse_ts(v) if k in ("since", "until") else v for k, v in query.items()}
    plan = audit.plan(deps, ledger.id, audit.ExportQuery(**typed))
    assert audit.count(deps, ledger.id, plan) == len(lines(ledger.export(**query)))


def test_the_query_starts_before_the_answer_and_the_rest_streams(ledger, monkeypatch):
    """A store failure at the start is an error answer, not a 200 with a cut body."""
    deps = ledger.client.application.extensions["consent_api.deps"]
    monkeypatch.setattr(audit, "CHUNK_BYTES", 2048)
    pulled = []
    original = deps.store.export_lines

    def counting(*args):  # a store that hands its lines over one at a time
        for batch in original(*args):
            for line in batch:
                pulled.append(line)
                yield [line]

    monkeypatch.setattr(deps.store, "export_lines", counting)
    out = audit.export(deps, ledger.id, audit.ExportQuery())
    assert 0 < len(pulled) < 13  # the first chunk only
    body = b"".join(out.chunks)
    assert len(pulled) == 13 and len(lines(body)) == 13

    def unavailable(*args):
        raise Unavailable("the store does not answer")
        yield  # pragma: no cover

    monkeypatch.setattr(deps.store, "export_lines", unavailable)
    problem = ledger.get("/v1/audit/events", expect=503).json
    assert problem["status"] == 503 and problem["detail"] == "the store does not answer"


scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8),
                    st.floats(allow_nan=False, allow_infinity=False))
cells = st.one_of(scalars, st.text(), st.dictionaries(st.text(max_size=5), scalars, max_size=3),
                  st.dictionaries(st.text(max_size=3), st.lists(scalars, max_size=2), max_size=2))


@given(st.fixed_dictionaries({name: cells for name in audit.CSV_COLUMNS}))
def test_csv_rows_are_exactly_what_the_csv_module_writes(event):
    expected = io.StringIO()
    csv.writer(expected, lineterminator="\r\n").writerow([_plain(event[name]) for name in audit.CSV_COLUMNS])
    rows = audit.CsvRows()
    first, again = rows(event), rows(event)  # the second from remembered nested cells
    assert first == again == audit.csv_row(event) == expected.getvalue().encode("utf-8")
    assert list(csv.reader(io.StringIO(first.decode("utf-8"), newline=""))) == [
        [_plain(event[name]) for name in audit.CSV_COLUMNS]]


def _plain(value) -> str:
    """A cell's text before quoting: what a CSV reader gives back."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return str(value)


def test_remembered_nested_cells_tell_true_from_one():
    rows = audit.CsvRows()
    texts = [rows({"evidence": {"gpc": value}}).split(b",")[-9] for value in (True, 1, 1.0, False, 0)]
    assert texts == [b'"{""gpc"":true}"', b'"{""gpc"":1}"', b'"{""gpc"":1.0}"', b'"{""gpc"":false}"',
                     b'"{""gpc"":0}"']


@given(st.fixed_dictionaries({name: cells for name in EVENT_FIELDS}))
def test_ndjson_lines_are_exactly_the_canonical_json_of_the_stdlib(event):
    """ndjson_line and the hash chain's canonical_json use orjson for speed; their bytes must stay
    those of the documented encoder."""
    try:
        expected = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: neither writes it
        return
    assert audit.ndjson_line(event) == expected + b"\n"
    body = {k: v for k, v in event.items() if k not in ("hash", "subject_id")}
    assert ledger.canonical_json(event) == json.dumps(body, sort_keys=True, separators=(",", ":"),
                                                      ensure_ascii=False).encode("utf-8")


@pytest.mark.parametrize("value", [1e-7, 2.5e-5, 1e16, 1e22, 0.1, 1.0, -0.0, 5e-324])
def test_floats_are_written_as_the_stdlib_writes_them(value):
    """orjson writes 1e-7 where the stdlib writes 1e-07: an event holding a float anywhere (an
    imported one might) is encoded by the stdlib, for the chain's hash and for the export."""
    event = {"event_id": "e1", "evidence": {"scores": [1, {"x": value}]}, "hash": "h", "subject_id": "s"}
    body = {k: v for k, v in event.items() if k not in ("hash", "subject_id")}
    stdlib = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    assert ledger.canonical_json(event) == stdlib
    assert audit.ndjson_line(event) == json.dumps(event, sort_keys=True, separators=(",", ":"),
                                                  ensure_ascii=False).encode("utf-8") + b"\n"
