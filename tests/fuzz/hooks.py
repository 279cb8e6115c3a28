"""Schemathesis hooks for the consent_api fuzz runs (loaded through SCHEMATHESIS_HOOKS).

- ``refused_by_shape``: a schema-valid request answered 422 with marshmallow's own messages
  (wrong type, unknown field, length, pattern...) means openapi.yaml accepts what the server
  does not: the document is looser than the code.
- ``map_case``: now and then point positive cases at the seeded subject, the tenant's real
  purposes and its policy version, so they get past the catalog rules and exercise the ledger;
  and turn a share of the negative cases hostile (``hostile``): shapes schemathesis does not
  generate by itself, which once reached a store or an encoder as a 500 (a lone UTF-16
  surrogate or a NUL in a string, nesting past the parser's limit, cursors beyond 64 bits or
  decoding to broken text).
  Webhook URLs of positive cases become a closed port of 127.0.0.1 (the fuzzed server allows
  private receivers and runs no delivery worker, so nothing is ever sent anywhere), and
  long polls of the change feed wait half a second at most.
"""

from __future__ import annotations

import base64
import json
import os
import random

import schemathesis
from schemathesis import Case

SHAPE_MESSAGES = (
    "Not a valid", "Unknown field.", "Missing data for required field.", "Field may not be null.",
    "Length must be", "Shorter than", "Longer than", "String does not match expected pattern.",
    "Must be one of", "Must be greater", "Must be less", "Must be at least", "Must be at most",
    "Invalid input type.",
)

PURPOSES = [p for p in os.environ.get("CONSENT_FUZZ_PURPOSES", "").split(",") if p]
POLICY = os.environ.get("CONSENT_FUZZ_POLICY", "")
SUBJECT = os.environ.get("CONSENT_FUZZ_SUBJECT", "")
WEBHOOK_URL = "http://127.0.0.1:9/hooks"  # the discard port: nothing listens there


@schemathesis.check
def refused_by_shape(ctx, response, case: Case):
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 422:
        return None
    try:
        errors = json.loads(response.content).get("errors") or {}
    except ValueError:
        return None
    shaped = {field: msgs for field, msgs in errors.items()
              if any(m.startswith(SHAPE_MESSAGES) for m in msgs)}
    if shaped:
        raise AssertionError(f"a schema-valid request was refused for its shape: {shaped}")
    return None


def _cursor(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


HOSTILE_STRINGS = ("\ud800", "x\udfff", "\x00", "a\x00b", "\ud83d")
HOSTILE_CURSORS = (_cursor(str(2**64).encode()), _cursor(str(2**63).encode()), _cursor(b'"\\ud800"'),
                   _cursor(b"\xff\xfe"), _cursor(b"NaN"), _cursor(b"[" * 200), "A" * 3000)


def _nested(depth: int) -> object:
    value: object = "deep"
    for _ in range(depth):
        value = [value]
    return value


def _spoil_strings(value: object) -> object:
    """The document with a hostile string put into (or in place of) one of its strings."""
    if isinstance(value, str):
        return random.choice((value + random.choice(HOSTILE_STRINGS), random.choice(HOSTILE_STRINGS)))
    if isinstance(value, list) and value:
        i = random.randrange(len(value))
        return [_spoil_strings(v) if n == i else v for n, v in enumerate(value)]
    if isinstance(value, dict) and value:
        name = random.choice(list(value))
        return {k: _spoil_strings(v) if k == name else v for k, v in value.items()}
    return value


# Bodies to send instead of the generated one, by case id. They go out as raw text through
# before_call: a lone surrogate inside case.body would crash schemathesis's own revalidation of
# the case (its validator encodes strings as UTF-8) before the request is ever sent.
_RAW_BODIES: dict[int, bytes] = {}


def hostile(case: Case) -> Case:
    """One hostile shape in the body, a path parameter or the cursor."""
    targets = []
    if isinstance(case.body, dict | list):
        targets += ["string", "nesting", "name"]
    if isinstance(case.path_parameters, dict) and case.path_parameters:
        targets.append("path")
    if isinstance(case.query, dict) and "cursor" in case.query:
        targets.append("cursor")
    if not targets:
        return case
    target = random.choice(targets)
    if target == "string":
        _RAW_BODIES[case.id] = json.dumps(_spoil_strings(case.body)).encode("ascii")
    elif target == "nesting":
        deep = _nested(random.choice((33, 100, 400)))
        document = {**case.body, "decisions": deep} if isinstance(case.body, dict) else deep
        _RAW_BODIES[case.id] = json.dumps(document).encode("ascii")
    elif target == "name" and isinstance(case.body, dict):
        _RAW_BODIES[case.id] = json.dumps({**case.body, "\ud800": 1}).encode("ascii")
    elif target == "path":
        name = random.choice(list(case.path_parameters))
        case.path_parameters[name] = str(case.path_parameters[name]) + random.choice(("\x00", "%00"))
    elif target == "cursor":
        case.query["cursor"] = random.choice(HOSTILE_CURSORS)
    return case


@schemathesis.hook
def before_call(ctx, case: Case, kwargs) -> None:
    raw = _RAW_BODIES.pop(case.id, None)
    if raw is not None:
        kwargs["data"] = raw  # still sent as application/json: the case's body stays a JSON document


@schemathesis.hook
def map_case(ctx, case: Case) -> Case:
    """Half of the positive cases name the seeded subject, real purposes and the published
    policy, so they get past the catalog rules and reach the ledger. Negative cases stay as
    generated (replacing their values could make them valid), but a third of them turn
    hostile: they stay invalid, and must be refused with a 4xx like any other."""
    meta = case.meta
    query = case.query
    if isinstance(query, dict) and isinstance(query.get("wait"), (int, float)) and 0 < query["wait"] <= 30:
        query["wait"] = min(query["wait"], 0.5)  # a valid wait stays valid, an invalid one invalid
    if meta is not None and not meta.generation.mode.is_positive:
        return hostile(case) if random.random() < 0.35 else case
    if meta is None:
        return case
    if isinstance(case.body, dict) and isinstance(case.body.get("url"), str):
        case.body["url"] = WEBHOOK_URL
    if random.random() < 0.5:
        return case
    params = case.path_parameters
    if isinstance(params, dict):
        if SUBJECT and "subject_id" in params:
            params["subject_id"] = SUBJECT
        if PURPOSES and "purpose" in params:
            params["purpose"] = random.choice(PURPOSES)
    body = case.body
    if PURPOSES and isinstance(body, dict):
        if isinstance(body.get("decisions"), list):
            free = list(PURPOSES)
            random.shuffle(free)
            for decision in body["decisions"]:
                if isinstance(decision, dict) and "purpose" in decision and free:
                    decision["purpose"] = free.pop()
            if "policy_version" in body and POLICY:
                body["policy_version"] = POLICY
        if isinstance(body.get("purposes"), list) and body["purposes"]:
            body["purposes"] = [random.choice(PURPOSES) for _ in body["purposes"]]
        if isinstance(body.get("purpose"), str):
            body["purpose"] = random.choice(PURPOSES)
    return case
