"""consent-api export and verify-export: a good export verifies offline, and every kind of
tampering fails, pointing at the first bad event."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from consent_api import cli
from consent_api.verify import verify_files
from tests.audit.ledger import lines


class Cli:
    def __init__(self, capsys, tmp_path: Path):
        self.capsys = capsys
        self.tmp = tmp_path

    def run(self, *argv: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = cli.main([str(a) for a in argv])
        out, err = self.capsys.readouterr()
        return code, out, err

    def export(self, name: str = "events.ndjson", *options: str) -> Path:
        out = self.tmp / name
        code, _, err = self.run("export", "--out", out, *options)
        assert code == 0, err
        return out

    def verify(self, path: Path, manifest: Path | None = None, jwks: Path | None = None) -> tuple[int, str]:
        manifest = manifest or path.with_name(path.name + ".manifest.jws")
        jwks = jwks or path.with_name(path.name + ".jwks.json")
        code, out, err = self.run("verify-export", path, "--manifest", manifest, "--jwks", jwks)
        return code, (out + err).strip()


@pytest.fixture
def run(capsys, tmp_path) -> Cli:
    return Cli(capsys, tmp_path)


@pytest.fixture
def exported(file_ledger, run) -> Path:
    return run.export()


def rewrite(path: Path, transform) -> None:
    raw = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(transform(raw)))


def line_of(path: Path, predicate) -> int:
    """0-based index of the first line whose event satisfies predicate."""
    return next(i for i, e in enumerate(lines(path.read_bytes())) if predicate(e))


# --- good exports ---------------------------------------------------------------------------------

def test_export_writes_file_manifest_and_jwks_and_verifies(file_ledger, exported, run):
    assert exported.read_bytes() == file_ledger.export()
    assert json.loads(exported.with_name("events.ndjson.jwks.json").read_text()) == file_ledger.jwks()
    code, verdict = run.verify(exported)
    kid = file_ledger.jwks()["keys"][0]["kid"]
    assert (code, verdict) == (0, f"OK: 13 events, 5 subjects, manifest signed by kid {kid}")


def test_export_shows_progress_and_where_the_files_went(file_ledger, run):
    code, _, err = run.run("export", "--out", run.tmp / "e.ndjson")
    assert code == 0
    assert "[########################] 100.0%  13/13 events" in err
    assert "wrote 13 events" in err and "e.ndjson.manifest.jws" in err and "verify-export" in err


@pytest.mark.parametrize("options", [
    ("--purpose", "location"),
    ("--since", "2026-03-02T08:07:00Z"),
    ("--until", "2026-03-02T09:00:00Z"),
    ("--subject-id", "alice"),
    ("--since", "2026-03-02T08:05:00Z", "--purpose", "personalized_push", "--until", "2026-03-02T10:00:00Z"),
    ("--format", "csv"),
    ("--format", "csv", "--purpose", "personalized_push"),
])
def test_filtered_and_csv_exports_verify(file_ledger, run, options):
    path = run.export("part.out", *options)
    assert path.read_bytes()
    code, verdict = run.verify(path)
    assert code == 0 and verdict.startswith("OK: "), verdict


def test_a_purpose_export_has_gaps_and_a_since_export_starts_mid_chain(file_ledger, run):
    events = lines(run.export("p.ndjson", "--purpose", "personalized_push").read_bytes())
    assert any(e["seq"] > 1 and e["prev_hash"] != "0" * 64 for e in events)
    events = lines(run.export("s.ndjson", "--since", "2026-03-02T08:07:00Z").read_bytes())
    assert min(e["seq"] for e in events if e["subject_id"] == "alice") == 3


def test_the_http_export_and_manifest_verify_with_the_cli(file_ledger, run):
    path = run.tmp / "http.ndjson"
    path.write_bytes(file_ledger.export(purpose="location"))
    (run.tmp / "m.jws").write_text(file_ledger.manifest(purpose="location"))
    (run.tmp / "k.json").write_text(json.dumps(file_ledger.jwks()))
    code, verdict = run.verify(path, run.tmp / "m.jws", run.tmp / "k.json")
    assert code == 0 and verdict.startswith("OK: 5 events, 4 subjects"), verdict


def test_an_erased_subjects_chain_verifies_and_hides_the_id(file_ledger, exported, run):
    erase = next(e for e in lines(exported.read_bytes()) if e["action"] == "erase")
    assert erase["subject_id"] is None and erase["purpose"] is None
    assert run.verify(exported)[0] == 0


# --- tampering: each must fail --------------------------------------------------------------------

def test_every_single_byte_change_in_an_event_fails(exported):
    original = exported.read_bytes()
    start = original.index(b"\n", original.index(b"\n") + 1) + 1  # the third line, a mid-chain event
    end = original.index(b"\n", start) + 1
    manifest = exported.with_name("events.ndjson.manifest.jws")
    jwks = exported.with_name("events.ndjson.jwks.json")
    for position in range(start, end):
        tampered = bytearray(original)
        tampered[position] ^= 0x01
        exported.write_bytes(bytes(tampered))
        verdict = verify_files(exported, manifest, jwks)
        assert not verdict.ok, f"a change at byte {position - start} of the line went unnoticed"


@pytest.mark.parametrize("field, old, new, message", [
    ("action", b'"action":"grant"', b'"action":"deny"', "hash does not match the event's content"),
    ("purpose", b'"purpose":"location"', b'"purpose":"lokation"', "hash does not match the event's content"),
    ("occurred_at", b'"occurred_at":"2026-03-02T08', b'"occurred_at":"2026-03-01T08',
     "hash does not match the event's content"),
    ("hash", None, None, "hash does not match the event's content"),
])
def test_a_changed_event_is_named_by_line_and_identity(exported, run, field, old, new, message):
    index = line_of(exported, lambda e: e["subject_id"] == "carol" and e["seq"] == 2)
    event = lines(exported.read_bytes())[index]

    if field == "hash":
        old, new = event["hash"].encode(), event["hash"][::-1].encode()

    def change(raw):
        assert old in raw[index], (field, raw[index])
        raw[index] = raw[index].replace(old, new, 1)
        return raw

    rewrite(exported, change)
    code, verdict = run.verify(exported)
    assert code == 1
    assert verdict == (f"FAILED: line {index + 1} (event_id {event['event_id']}, subject_ref "
                       f"{event['subject_ref']}, seq 2): {message}")


def test_a_changed_prev_hash_breaks_the_link(exported, run):
    index = line_of(exported, lambda e: e["subject_id"] == "alice" and e["seq"] == 3)
    rewrite(exported, lambda raw: [r.replace(b'"prev_hash":"', b'"prev_hash":"f', 1)[:] if i == index else r
                                   for i, r in enumerate(raw)])
    code, verdict = run.verify(exported)
    assert code == 1 and f"FAILED: line {index + 1} (" in verdict
    assert verdict.endswith("prev_hash does not match the hash of seq 2")


def test_a_changed_subject_id_is_caught_by_the_digest(exported, run):
    rewrite(exported, lambda raw: [r.replace(b'"subject_id":"bob"', b'"subject_id":"rob"') for r in raw])
    code, verdict = run.verify(exported)
    assert code == 1 and "FAILED: the file's sha256" in verdict and "not the manifest's" in verdict


def test_a_dropped_event_in_a_chain_fails_at_the_next_event(exported, run):
    index = line_of(exported, lambda e: e["subject_id"] == "alice" and e["seq"] == 2)
    rewrite(exported, lambda raw: raw[:index] + raw[index + 1:])
    code, verdict = run.verify(exported)
    assert code == 1 and "seq 3): seq 3 follows seq 1: 1 event(s) missing or out of place" in verdict


def test_a_dropped_last_event_fails_on_the_count(exported, run):
    rewrite(exported, lambda raw: raw[:-1])
    code, verdict = run.verify(exported)
    assert (code, verdict) == (1, "FAILED: the file has 12 events, the manifest says 13")


def test_a_dropped_first_event_fails_where_the_chain_starts_late(exported, run):
    rewrite(exported, lambda raw: raw[1:])
    code, verdict = run.verify(exported)
    assert code == 1 and verdict.startswith("FAILED: line 1 (")
    assert verdict.endswith("the chain starts at seq 2: the events before it are missing or out of place")


@pytest.mark.parametrize("seqs", [(1, 2), (2, 3), (3, 4)])
def test_two_events_of_a_subject_reordered_fail(exported, run, seqs):
    a = line_of(exported, lambda e: e["subject_id"] == "alice" and e["seq"] == seqs[0])
    b = line_of(exported, lambda e: e["subject_id"] == "alice" and e["seq"] == seqs[1])

    def swap(raw):
        raw[a], raw[b] = raw[b], raw[a]
        return raw

    rewrite(exported, swap)
    code, verdict = run.verify(exported)
    assert code == 1 and verdict.startswith("FAILED: line "), verdict
    assert "out of order" in verdict or "out of place" in verdict


def test_a_chain_reordered_with_consistent_timestamps_still_fails(exported, run):
    """Even if the rows are re-sorted after swapping, the seq links break."""
    raw = exported.read_bytes().splitlines(keepends=True)
    events = [json.loads(r) for r in raw]
    a = line_of(exported, lambda e: e["subject_id"] == "alice" and e["seq"] == 1)
    b = line_of(exported, lambda e: e["subject_id"] == "alice" and e["seq"] == 2)
    events[a]["seq"], events[b]["seq"] = 2, 1
    exported.write_bytes(b"".join(json.dumps(e, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
                                  .encode() + b"\n" for e in sorted(
                                      events, key=lambda e: (e["recorded_at"], e["seq"], e["event_id"]))))
    code, verdict = run.verify(exported)
    assert code == 1 and "FAILED: line " in verdict


def test_the_manifest_of_another_export_fails(file_ledger, exported, run):
    other = run.export("other.ndjson", "--purpose", "location")
    code, verdict = run.verify(exported, manifest=other.with_name("other.ndjson.manifest.jws"))
    assert code == 1 and verdict.startswith("FAILED: line ")
    assert "purpose is not the filter's 'location'" in verdict


def test_the_manifest_of_a_later_export_with_the_same_filters_fails(file_ledger, clock, exported, run):
    clock.advance(minutes=1)
    file_ledger.decide("bob", policy="v1", personalized_push=True)
    later = run.export("later.ndjson")
    code, verdict = run.verify(exported, manifest=later.with_name("later.ndjson.manifest.jws"))
    assert (code, verdict) == (1, "FAILED: the file has 13 events, the manifest says 14")


def test_a_manifest_from_an_export_of_equal_size_fails_on_the_digest(file_ledger, run):
    first = run.export("a.ndjson", "--subject-id", "bob")
    second = run.export("b.ndjson", "--subject-id", "eve")
    code, verdict = run.verify(first, manifest=second.with_name("b.ndjson.manifest.jws"))
    assert code == 1 and verdict.startswith("FAILED: line 1 (") and "subject_id is not the filter's 'eve'" in verdict


def test_a_forged_manifest_fails_the_signature(exported, run):
    manifest = exported.with_name("events.ndjson.manifest.jws")
    header, payload, signature = manifest.read_text().strip().split(".")
    manifest.write_text(f"{header}.{payload}.{signature[:-4]}AAAA")
    code, verdict = run.verify(exported)
    assert code == 1 and verdict.startswith("FAILED: manifest: signature does not verify with kid sk-")


def test_a_jwks_without_the_key_fails(exported, run):
    jwks = run.tmp / "empty.json"
    jwks.write_text('{"keys": []}')
    code, verdict = run.verify(exported, jwks=jwks)
    assert code == 1 and "is not in the JWKS" in verdict


def test_a_cut_short_file_fails(exported, run):
    exported.write_bytes(exported.read_bytes()[:-40])
    code, verdict = run.verify(exported)
    assert code == 1 and verdict.endswith("incomplete line (no newline at the end): the export was cut short")


def test_a_changed_csv_cell_fails_with_its_row(file_ledger, run):
    path = run.export("e.csv", "--format", "csv")
    rows = path.read_bytes().split(b"\r\n")
    index = next(i for i, row in enumerate(rows) if i > 2 and b",grant," in row)
    rows[index] = rows[index].replace(b",grant,", b",deny,", 1)
    path.write_bytes(b"\r\n".join(rows))
    code, verdict = run.verify(path)
    assert code == 1 and verdict.startswith(f"FAILED: row {index + 1} (")
    assert verdict.endswith("hash does not match the event's content")


# --- resume ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["ndjson", "csv"])
@pytest.mark.parametrize("cut", ["mid_line", "line_end", "empty"])
def test_resume_keeps_complete_lines_and_finishes_the_same_export(file_ledger, run, fmt, cut):
    full = run.export("full", "--format", fmt).read_bytes()
    part = run.tmp / "part"
    sep = b"\r\n" if fmt == "csv" else b"\n"
    boundary = full.index(sep, len(full) // 2) + len(sep)
    part.write_bytes({"mid_line": full[:boundary + 30], "line_end": full[:boundary], "empty": b""}[cut])
    code, _, err = run.run("export", "--out", part, "--format", fmt, "--resume")
    assert code == 0, err
    assert part.read_bytes() == full
    kept = full[:boundary].count(sep) - (fmt == "csv")
    assert f"({kept if cut != 'empty' else 0} kept from the earlier run)" in err
    assert run.verify(part)[0] == 0


def test_resume_picks_up_events_recorded_since(file_ledger, clock, run):
    first = run.export("e.ndjson").read_bytes()
    clock.advance(minutes=3)
    file_ledger.decide("frank", policy="v1", location=True)
    code, _, err = run.run("export", "--out", run.tmp / "e.ndjson", "--resume")
    assert code == 0 and "(13 kept from the earlier run)" in err
    resumed = (run.tmp / "e.ndjson").read_bytes()
    assert resumed.startswith(first) and len(lines(resumed)) == 14
    assert run.verify(run.tmp / "e.ndjson")[1].startswith("OK: 14 events, 6 subjects")


def test_resume_refuses_a_file_that_is_not_the_stores_export(file_ledger, run):
    path = run.export("e.ndjson")
    rewrite(path, lambda raw: raw[:1] + [raw[1].replace(b'"locale":"zh-CN"', b'"locale":"zh-TW"')] + raw[2:5])
    code, _, err = run.run("export", "--out", path, "--resume")
    assert code == 2 and "line 2 of the file is not what the store exports" in err


def test_resume_refuses_a_file_longer_than_the_export(file_ledger, run):
    path = run.export("e.ndjson")
    code, _, err = run.run("export", "--out", path, "--resume", "--purpose", "location")
    assert code == 2 and "not what the store exports" in err


def test_resume_without_a_file_starts_a_new_export(file_ledger, run):
    code, _, err = run.run("export", "--out", run.tmp / "new.ndjson", "--resume")
    assert code == 0 and "does not exist yet" in err
    assert run.verify(run.tmp / "new.ndjson")[0] == 0


# --- tenants and arguments -----------------------------------------------------------------------------

def test_several_tenants_need_tenant(file_ledger, run):
    file_ledger.api.new_tenant("Other", purposes=None)
    code, _, err = run.run("export", "--out", run.tmp / "x")
    assert code == 2 and "name one with --tenant" in err
    code, _, err = run.run("export", "--out", run.tmp / "x", "--tenant", file_ledger.id)
    assert code == 0 and "wrote 13 events" in err
    code, _, err = run.run("export", "--out", run.tmp / "x", "--tenant", "ten_nope")
    assert code == 2 and "unknown tenant" in err


def test_a_bad_time_is_a_usage_error(file_ledger, run):
    with pytest.raises(SystemExit) as exc:
        run.run("export", "--out", run.tmp / "x", "--since", "last tuesday")
    assert exc.value.code == 2
    assert "not an RFC 3339 time" in run.capsys.readouterr().err


def test_verify_names_a_missing_file(run):
    code, verdict = run.verify(run.tmp / "nope.ndjson", run.tmp / "m", run.tmp / "j")
    assert code == 1 and verdict.startswith("FAILED: cannot read ")
