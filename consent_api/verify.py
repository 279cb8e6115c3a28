"""Verify an audit export offline: the hash chains, the signed manifest, the count, the digest.

Needs nothing but the export file, its manifest (a compact JWS) and the service's JWKS; it
imports only the standard library, pyjwt (with cryptography) and ``consent_api.domain`` (the
ledger rules, themselves stdlib-only), so an auditor can run it without a store or a server:

    python -m consent_api.verify events.ndjson --manifest events.ndjson.manifest.jws \\
        --jwks events.ndjson.jwks.json

The file is read once, in order, in constant memory apart from one (seq, hash) pair per
subject. Rules, checked at each event as it comes:

- rows are in export order, (recorded_at, seq, event_id) strictly increasing, and inside the
  manifest's filters;
- ``hash == sha256_hex(ascii(prev_hash) + canonical(event))`` (DESIGN.md §4);
- per subject_ref, seq increases; consecutive seqs are linked by ``prev_hash``; a chain's first
  event is seq 1 with 64 zeros unless ``since`` or ``purpose`` filtered the export (then it may
  start later), and only a ``purpose`` filter may leave gaps between seqs;
- afterwards: the manifest's count, the sha256 of the file's bytes (``sha256`` for NDJSON,
  ``sha256_csv`` for CSV) and every chain head.

The first failure stops the run and names its line (NDJSON) or row (CSV, header = row 1).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import itertools
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from consent_api.domain.ledger import ZERO_HASH, chain_hash
from consent_api.domain.model import EVENT_FIELDS
from consent_api.domain.requests import REQUEST_FIELDS

# Only public-key algorithms: a JWKS holds public keys, so an HMAC "signature" proves nothing.
ASYMMETRIC_ALGS = ("ES256", "ES384", "ES512", "EdDSA", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
_NESTED = ("source", "actor", "evidence")
_STRING = tuple(f for f in EVENT_FIELDS if f not in _NESTED + ("seq", "separate"))
_CSV_HEADER_PREFIX = b"event_id,"
# The CSV columns: the event fields, then the fields of rights-request events (empty on other rows).
# Exports made before requests existed have only the first part.
CSV_COLUMNS = EVENT_FIELDS + REQUEST_FIELDS


class Failure(Exception):
    """The export does not verify; ``where`` names the first bad line or row, if any."""

    def __init__(self, message: str, where: str | None = None):
        super().__init__(message)
        self.message = message
        self.where = where

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


@dataclass(frozen=True)
class Verdict:
    ok: bool
    events: int
    subjects: int
    kid: str | None
    failure: Failure | None = None

    def __str__(self) -> str:
        if self.ok:
            return (f"OK: {self.events} events, {self.subjects} subjects, "
                    f"manifest signed by kid {self.kid}")
        return f"FAILED: {self.failure}"


# --- the manifest ------------------------------------------------------------------------------

def read_manifest(token: str, jwks: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """The manifest's payload and kid, once its signature verifies with a key of the JWKS."""
    token = token.strip()
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise Failure(f"manifest: not a compact JWS ({exc})") from exc
    kid = header.get("kid")
    jwk = next((k for k in jwks.get("keys", []) if k.get("kid") == kid), None) if kid else None
    if jwk is None:
        raise Failure(f"manifest: its kid {kid!r} is not in the JWKS")
    alg = jwk.get("alg") or header.get("alg")
    if alg not in ASYMMETRIC_ALGS or header.get("alg") != alg:
        raise Failure(f"manifest: algorithm {header.get('alg')!r} is not the key's public-key algorithm")
    try:
        key = jwt.PyJWK(jwk, algorithm=alg).key
        payload = jwt.decode(token, key, algorithms=[alg],
                             options={"verify_exp": False, "verify_aud": False, "verify_iat": False})
    except jwt.PyJWTError as exc:
        raise Failure(f"manifest: signature does not verify with kid {kid} ({exc})") from exc
    for name, kind in (("count", int), ("sha256", str), ("sha256_csv", str),
                       ("chain_heads", dict), ("filters", dict)):
        if not isinstance(payload.get(name), kind):
            raise Failure(f"manifest: field {name!r} is missing or malformed")
    return payload, kid


# --- reading the export ------------------------------------------------------------------------

def _ndjson_events(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, 1):
            where = f"line {number}"
            if not raw.endswith(b"\n"):
                raise Failure("incomplete line (no newline at the end): the export was cut short", where)
            try:
                event = json.loads(raw)
            except (ValueError, UnicodeDecodeError) as exc:
                raise Failure(f"not a JSON event ({exc})", where) from exc
            if not isinstance(event, dict):
                raise Failure("not a JSON object", where)
            yield where, event


def _csv_events(path: Path) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Each row with its candidate events: an empty cell is null or, for a text column, an
    empty string; the chain check accepts the candidate whose hash matches."""
    with path.open("r", encoding="utf-8", newline="") as fh:
        rows = csv.reader(fh, strict=True)
        try:
            header = next(rows, None)
        except csv.Error as exc:
            raise Failure(f"not a CSV export ({exc})", "row 1") from exc
        if header not in (list(CSV_COLUMNS), list(EVENT_FIELDS)):
            raise Failure("the header is not the export's column list", "row 1")
        number = 1
        while True:
            try:
                row = next(rows)
            except StopIteration:
                return
            except (csv.Error, UnicodeDecodeError) as exc:
                raise Failure(f"unreadable CSV ({exc})", f"row {number + 1}") from exc
            number += 1
            where = f"row {number}"
            if len(row) != len(header):
                raise Failure(f"{len(row)} cells where {len(header)} were expected", where)
            cells = dict(zip(header, row, strict=True))
            if not cells.get("request_id"):  # not a request's event: it has none of their fields
                for name in REQUEST_FIELDS:
                    cells.pop(name, None)
            yield where, _csv_candidates(cells, where)


def _csv_candidates(cells: dict[str, str], where: str) -> list[dict[str, Any]]:
    event: dict[str, Any] = {}
    try:
        for name, cell in cells.items():
            if cell == "":
                event[name] = None
            elif name == "seq":
                event[name] = int(cell)
            elif name == "separate":
                event[name] = {"true": True, "false": False}[cell]
            elif name in _NESTED:
                event[name] = json.loads(cell)
            else:
                event[name] = cell
    except (ValueError, KeyError) as exc:
        raise Failure(f"cell {name!r} cannot be read ({exc})", where) from exc
    empty = [n for n in _STRING if cells[n] == "" and n not in ("hash", "prev_hash", "subject_id")][:4]
    candidates = [event]
    for size in range(1, len(empty) + 1):
        for names in itertools.combinations(empty, size):
            candidates.append({**event, **{n: "" for n in names}})
    return candidates


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def detect_format(path: Path) -> str:
    with path.open("rb") as fh:
        return "csv" if fh.read(len(_CSV_HEADER_PREFIX)) == _CSV_HEADER_PREFIX else "ndjson"


# --- the chain rules ---------------------------------------------------------------------------

class _Chains:
    def __init__(self, manifest: dict[str, Any]):
        filters = manifest["filters"]
        self.filters = filters
        self.tenant_id = manifest.get("tenant_id")
        self.may_start_late = bool(filters.get("since") or filters.get("purpose"))
        self.may_skip = bool(filters.get("purpose"))
        self.heads: dict[str, tuple[int, str]] = {}
        self.last_key: tuple[str, int, str] | None = None
        self.count = 0

    def check(self, where: str, candidates: list[dict[str, Any]]) -> None:
        event = candidates[0]
        try:
            self._check(event, candidates)
        except Failure as failure:
            raise Failure(failure.message, f"{where} (event_id {event.get('event_id')}, subject_ref "
                                           f"{event.get('subject_ref')}, seq {event.get('seq')})") from None
        self.count += 1

    def _check(self, event: dict[str, Any], candidates: list[dict[str, Any]]) -> None:
        ref, seq, recorded_at = event.get("subject_ref"), event.get("seq"), event.get("recorded_at")
        if not isinstance(ref, str) or type(seq) is not int or seq < 1 or not isinstance(recorded_at, str) \
                or not isinstance(event.get("event_id"), str) or not isinstance(event.get("hash"), str) \
                or not isinstance(event.get("prev_hash"), str):
            raise Failure("subject_ref, seq, recorded_at, event_id, prev_hash or hash is missing or malformed")
        key = (recorded_at, seq, str(event["event_id"]))
        if self.last_key is not None and key <= self.last_key:
            raise Failure("out of order: an export is sorted by (recorded_at, seq, event_id)")
        self.last_key = key
        self._check_filters(event)

        head = self.heads.get(ref)
        if head is None:
            if seq == 1 and event["prev_hash"] != ZERO_HASH:
                raise Failure("the first event of a chain must have prev_hash of 64 zeros")
            if seq > 1 and not self.may_start_late:
                raise Failure(f"the chain starts at seq {seq}: the events before it are missing "
                              "or out of place")
        else:
            last_seq, last_hash = head
            if seq <= last_seq:
                raise Failure(f"seq {seq} comes after seq {last_seq} of the same subject")
            if seq == last_seq + 1 and event["prev_hash"] != last_hash:
                raise Failure(f"prev_hash does not match the hash of seq {last_seq}")
            if seq > last_seq + 1 and not self.may_skip:
                raise Failure(f"seq {seq} follows seq {last_seq}: {seq - last_seq - 1} event(s) missing "
                              "or out of place")
        if not any(chain_hash(c["prev_hash"], c) == c["hash"] for c in candidates):
            raise Failure("hash does not match the event's content")
        self.heads[ref] = (seq, event["hash"])

    def _check_filters(self, event: dict[str, Any]) -> None:
        f = self.filters
        if self.tenant_id is not None and event.get("tenant_id") != self.tenant_id:
            raise Failure(f"tenant_id {event.get('tenant_id')!r} is not the manifest's tenant")
        if f.get("since") and event["recorded_at"] < f["since"]:
            raise Failure(f"recorded_at lies before the filter since={f['since']}")
        if f.get("until") and event["recorded_at"] >= f["until"]:
            raise Failure(f"recorded_at is not before the filter until={f['until']}")
        for name in ("purpose", "subject_ref", "subject_id"):
            if f.get(name) is not None and event.get(name) != f[name]:
                raise Failure(f"{name} is not the filter's {f[name]!r}")


# --- the whole check -------------------------------------------------------------------------------

def verify_export(path: str | Path, manifest_token: str, jwks: dict[str, Any]) -> Verdict:
    """Check everything; the verdict names the first failure."""
    path = Path(path)
    kid = None
    chains = None
    try:
        manifest, kid = read_manifest(manifest_token, jwks)
        chains = _Chains(manifest)
        fmt = detect_format(path)
        if fmt == "csv":
            for where, candidates in _csv_events(path):
                chains.check(where, candidates)
        else:
            for where, event in _ndjson_events(path):
                chains.check(where, [event])
        if chains.count != manifest["count"]:
            raise Failure(f"the file has {chains.count} events, the manifest says {manifest['count']}")
        expected = manifest["sha256_csv" if fmt == "csv" else "sha256"]
        actual = file_sha256(path)
        if actual != expected:
            raise Failure(f"the file's sha256 {actual} is not the manifest's {expected}: "
                          "this is not the export the manifest describes")
        heads = manifest["chain_heads"]
        for ref, (seq, last_hash) in chains.heads.items():
            if heads.get(ref) != last_hash:
                raise Failure(f"the chain head of {ref} (seq {seq}) is not the manifest's")
        if len(heads) != len(chains.heads):
            missing = next(ref for ref in heads if ref not in chains.heads)
            raise Failure(f"the manifest has a chain head for {missing}, which the file does not contain")
    except Failure as failure:
        return Verdict(False, chains.count if chains else 0, len(chains.heads) if chains else 0, kid, failure)
    except OSError as exc:
        return Verdict(False, 0, 0, kid, Failure(f"cannot read {exc.filename}: {exc.strerror}"))
    return Verdict(True, chains.count, len(chains.heads), kid)


def verify_files(export: str | Path, manifest: str | Path, jwks: str | Path) -> Verdict:
    """verify_export with the manifest and the JWKS read from files."""
    try:
        token = Path(manifest).read_text(encoding="utf-8")
        keys = json.loads(Path(jwks).read_text(encoding="utf-8"))
    except OSError as exc:
        return Verdict(False, 0, 0, None, Failure(f"cannot read {exc.filename}: {exc.strerror}"))
    except ValueError as exc:
        return Verdict(False, 0, 0, None, Failure(f"the JWKS is not JSON ({exc})"))
    if not isinstance(keys, dict):
        return Verdict(False, 0, 0, None, Failure("the JWKS is not a JSON object with keys"))
    return verify_export(export, token, keys)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="verify-export", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    return run(args)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="the export (NDJSON or CSV)")
    parser.add_argument("--manifest", required=True, help="the manifest JWS (FILE.manifest.jws)")
    parser.add_argument("--jwks", required=True, help="the service's JWKS (FILE.jwks.json, or a copy "
                                                      "of /.well-known/jwks.json fetched independently)")


def run(args: argparse.Namespace) -> int:
    verdict = verify_files(args.file, args.manifest, args.jwks)
    print(verdict)
    return 0 if verdict.ok else 1


if __name__ == "__main__":
    sys.exit(main())
