"""Schemathesis hooks for the consent_api fuzz runs (loaded through SCHEMATHESIS_HOOKS).

- ``refused_by_shape``: a schema-valid request answered 422 with marshmallow's own messages
  (wrong type, unknown field, length, pattern...) means openapi.yaml accepts what the server
  does not: the document is looser than the code.
- ``map_case``: now and then point positive cases at the seeded subject, the tenant's real
  purposes and its policy version, so they get past the catalog rules and exercise the ledger.
  Webhook URLs of positive cases become a closed port of 127.0.0.1 (the fuzzed server allows
  private receivers and runs no delivery worker, so nothing is ever sent anywhere), and
  long polls of the change feed wait half a second at most.
"""

from __future__ import annotations

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


@schemathesis.hook
def map_case(ctx, case: Case) -> Case:
    """Half of the positive cases name the seeded subject, real purposes and the published
    policy, so they get past the catalog rules and reach the ledger. Negative cases stay as
    generated: replacing their values could make them valid."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return case
    if isinstance(case.body, dict) and isinstance(case.body.get("url"), str):
        case.body["url"] = WEBHOOK_URL
    query = case.query
    if isinstance(query, dict) and isinstance(query.get("wait"), (int, float)):
        query["wait"] = min(query["wait"], 0.5)
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
