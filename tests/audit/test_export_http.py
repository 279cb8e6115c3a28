"""GET /v1/audit/events: order, formats, filters, cursor resume, parameters, scopes."""

from __future__ import annotations

import csv
import hashlib
import io
import json

import pytest

from consent_api.domain.ledger import ZERO_HASH
from consent_api.domain.model import EVENT_FIELDS
from consent_api.services import audit
from consent_api.services.audit import cursor_of
from consent_api.services.pages import encode_cursor
from tests.audit.ledger import lines
from tests.support.api import OPERATOR_TOKEN
from tests.support.apps import ON_BOTH_STORES

pytestmark = ON_BOTH_STORES

ORDER = lambda e: (e["recorded_at"], e["seq"], e["event_id"])


def test_ndjson_is_every_event_in_contract_order(ledger):
    response = ledger.get("/v1/audit/events", expect=200)
    assert response.headers["Content-Type"] == "application/x-ndjson"
    assert response.is_streamed
    events = lines(response.get_data())
    assert len(events) == 13
    assert [ORDER(e) for e in events] == sorted(ORDER(e) for e in events)
    assert len({e["event_id"] for e in events}) == len(events)
    by_subject = {}
    for e in events:
        by_subject.setdefault(e["subject_ref"], []).append(e["seq"])
    assert all(seqs == list(range(1, len(seqs) + 1)) for seqs in by_subject.values())


def test_each_line_is_the_event_with_sorted_keys_and_its_canonical_form_is_what_the_hash_covers(ledger):
    for raw in ledger.export().splitlines():
        event = json.loads(raw)
        assert list(event) == sorted(event) and set(event) == set(EVENT_FIELDS)
        assert raw == json.dumps(event, sort_keys=True, separators=(",", ":"),
                                 ensure_ascii=False).encode("utf-8")
        canonical = json.dumps({k: v for k, v in event.items() if k not in ("hash", "subject_id")},
                               sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert hashlib.sha256((event["prev_hash"] + canonical).encode("utf-8")).hexdigest() == event["hash"]


def test_raw_utf8_not_escapes(ledger):
    body = ledger.export()
    assert b"zh-CN" in body and b"\\u" not in body


def test_erased_subject_shows_null_id_and_its_chain_still_verifies(ledger):
    events = lines(ledger.export())
    erased = [e for e in events if e["subject_id"] is None]
    assert [e["action"] for e in erased] == ["grant", "erase"]
    assert erased[0]["prev_hash"] == ZERO_HASH and erased[1]["prev_hash"] == erased[0]["hash"]


def test_csv_has_a_header_nested_fields_as_json_and_the_same_rows(ledger):
    response = ledger.get("/v1/audit/events", query={"format": "csv"}, expect=200)
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    body = response.get_data()
    assert body.startswith(b"event_id,tenant_id,subject_id,subject_ref,seq,")
    rows = list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))
    assert rows[0] == list(EVENT_FIELDS) + ["request_id", "request_type", "status", "due_at", "notice"]
    events = lines(ledger.export())
    assert len(rows) == len(events) + 1
    for row, event in zip(rows[1:], events):
        cells = dict(zip(rows[0], row))
        assert cells["event_id"] == event["event_id"] and cells["seq"] == str(event["seq"])
        assert json.loads(cells["source"]) == event["source"]
        assert cells["separate"] == ("true" if event["separate"] else "false")
        assert cells["subject_id"] == (event["subject_id"] or "")


@pytest.mark.parametrize("name", ["since", "until"])
def test_time_filters_since_inclusive_until_exclusive(ledger, name):
    events = lines(ledger.export())
    pivot = events[5]["recorded_at"]
    got = lines(ledger.export(**{name: pivot}))
    if name == "since":
        assert got == [e for e in events if e["recorded_at"] >= pivot]
    else:
        assert got == [e for e in events if e["recorded_at"] < pivot]
    assert 0 < len(got) < len(events)


def test_purpose_filter(ledger):
    events = lines(ledger.export())
    got = lines(ledger.export(purpose="location"))
    assert got == [e for e in events if e["purpose"] == "location"] and got


def test_subject_filter_gives_that_subjects_whole_chain(ledger):
    events = lines(ledger.export())
    got = lines(ledger.export(subject_id="alice"))
    assert got == [e for e in events if e["subject_id"] == "alice"]
    assert [e["seq"] for e in got] == [1, 2, 3, 4]


def test_subject_ref_filter_reaches_an_erased_subjects_chain(ledger):
    events = lines(ledger.export())
    ref = next(e["subject_ref"] for e in events if e["action"] == "erase")
    assert lines(ledger.export(subject_ref=ref)) == [e for e in events if e["subject_ref"] == ref]


@pytest.mark.parametrize("params", [
    {"subject_id": "nobody"}, {"subject_id": "dave"}, {"purpose": "never_defined"},
    {"since": "2030-01-01T00:00:00Z"},
])
def test_a_filter_without_match_is_an_empty_export_not_an_error(ledger, params):
    assert ledger.export(**params) == b""
    assert ledger.export(format="csv", **params).count(b"\n") == 1  # the header alone


def test_filters_combine(ledger):
    events = lines(ledger.export())
    since = events[3]["recorded_at"]
    got = lines(ledger.export(since=since, purpose="personalized_push", subject_id="alice"))
    assert got == [e for e in events if e["recorded_at"] >= since and e["purpose"] == "personalized_push"
                   and e["subject_id"] == "alice"]
    assert len(got) == 2


@pytest.mark.parametrize("fmt", ["ndjson", "csv"])
def test_cursor_of_the_last_line_resumes_byte_for_byte(ledger, fmt):
    full = ledger.export(format=fmt)
    events = lines(ledger.export())
    for cut in (1, 7, len(events) - 1, len(events)):
        head = b"".join(full.splitlines(keepends=True)[:cut + (fmt == "csv")])
        rest = ledger.export(format=fmt, cursor=cursor_of(events[cut - 1]))
        assert head + rest == full
    assert ledger.export(format=fmt, cursor=cursor_of(events[-1])) == b""


def test_cursor_combines_with_filters(ledger):
    only = lines(ledger.export(purpose="personalized_push"))
    rest = lines(ledger.export(purpose="personalized_push", cursor=cursor_of(only[1])))
    assert rest == only[2:]


@pytest.mark.parametrize("params, field", [
    ({"format": "xml"}, "format"),
    ({"since": "yesterday"}, "since"),
    ({"until": "2026-03-01T00:00:00"}, "until"),
    ({"since": "2026-03-02T00:00:00Z", "until": "2026-03-02T00:00:00Z"}, "until"),
    ({"purpose": "Not A Key"}, "purpose"),
    ({"subject_id": "a b"}, "subject_id"),
    ({"subject_ref": "sr_$"}, "subject_ref"),
    ({"cursor": "bm90IGEgY3Vyc29y"}, "cursor"),
    ({"cursor": "%%%"}, "cursor"),
    ({"cursor": encode_cursor(["2026-03-02T08:00:00.000000Z", 10**30, "e"])}, "cursor"),
    ({"cursor": encode_cursor(["2026-03-02T08:00:00.000000Z", -1, "e"])}, "cursor"),
    ({"cursor": encode_cursor(["\ud800", 1, "e"])}, "cursor"),
    ({"cursor": encode_cursor(["2026-03-02T08:00:00.000000Z", True, "e"])}, "cursor"),
    ({"purpose": "location\n"}, "purpose"),
    ({"subject_id": "alice\n"}, "subject_id"),
    ({"subject_ref": "sr_1\n"}, "subject_ref"),
    ({"purpose_key": "location"}, "purpose_key"),
    ({"limit": "10"}, "limit"),
])
def test_invalid_parameters_are_422_problems(ledger, params, field):
    problem = ledger.get("/v1/audit/events", query=params, expect=422).json
    assert field in problem["errors"]
    assert problem["status"] == 422 and problem["type"].endswith("/validation")


def test_a_repeated_parameter_is_refused(ledger):
    response = ledger.client.get("/v1/audit/events?purpose=location&purpose=personalized_push",
                                 headers=ledger.headers)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert "purpose" in response.get_json()["errors"]


def test_an_auditor_key_exports_but_writes_nothing(ledger):
    auditor = ledger.issue_key("audit:read")
    assert lines(ledger.export(token=auditor)) == lines(ledger.export())
    assert ledger.manifest(token=auditor)
    body = {"decisions": [{"purpose": "location", "granted": True}], "policy_version": "v2",
            "source": {"channel": "ios"}}
    writes = [
        ("POST", "/v1/subjects/alice/consents", body),
        ("POST", "/v1/subjects/alice/consents/withdraw-all", {"source": {"channel": "ios"}}),
        ("POST", "/v1/subjects/alice/prompts", {"purposes": ["location"], "source": {"channel": "ios"}}),
        ("DELETE", "/v1/subjects/alice", None),
        ("PUT", "/v1/purposes/new_one", {"kind": "processing", "title": {"en": "x"}}),
        ("POST", "/v1/policies", {"version": "v9"}),
        ("POST", "/v1/keys", {"name": "mine", "scopes": ["admin"]}),
    ]
    before = ledger.export()
    for method, path, payload in writes:
        problem = ledger.call(method, path, payload, token=auditor, expect=403).json
        assert problem["status"] == 403
    assert ledger.export() == before


def test_other_scopes_and_no_credentials_cannot_export(ledger):
    reader = ledger.issue_key("consents:read", "consents:write")
    for path in ("/v1/audit/events", "/v1/audit/manifest"):
        assert ledger.get(path, token=reader, expect=403).json["status"] == 403
        assert ledger.client.get(path).status_code == 401
        assert ledger.get(path, token=OPERATOR_TOKEN, expect=403).json["status"] == 403


def test_another_tenants_auditor_sees_none_of_these_events(ledger):
    other = ledger.api.new_tenant("Other", purposes=None).admin
    assert ledger.export(token=other) == b""


def test_the_export_is_streamed_in_chunks_from_a_generator(ledger, monkeypatch):
    monkeypatch.setattr(audit, "CHUNK_BYTES", 4096)
    response = ledger.get("/v1/audit/events", expect=200)
    chunks = list(response.response)
    assert len(chunks) > 2 and all(isinstance(c, bytes) for c in chunks)
    assert all(len(c) < 4096 + 2000 for c in chunks)  # a chunk ends at the first line past the size
    assert b"".join(chunks) == ledger.export() and len(lines(b"".join(chunks))) == 13
