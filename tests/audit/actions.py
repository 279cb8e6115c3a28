"""What a tenant's backend and an auditor do over HTTP, as short calls with the expected status,
and a small ledger to export."""

from __future__ import annotations

import json
from typing import Any

import pytest

from consent_api.domain.clock import FixedClock

OPERATOR = "op"
# For modules whose behaviour must not depend on the adapter (the store fixture reads it).
ON_BOTH_STORES = pytest.mark.parametrize("store_url", ["sqlite:///:memory:", "mongomock://audit"],
                                         indirect=True)


class Api:
    """One tenant seen through the HTTP API; every call asserts the status it expects."""

    def __init__(self, client, clock: FixedClock):
        self.client = client
        self.clock = clock
        answer = self.call("POST", "/v1/tenants", {"name": "Acme"}, token=OPERATOR, expect=201)
        self.tenant_id = answer["id"]
        self.admin_key = answer["admin_key"]

    # --- plumbing ---------------------------------------------------------------------------
    def call(self, method: str, path: str, body: Any = None, *, token: str | None = None,
             expect: int | None = 200, query: dict[str, Any] | None = None):
        response = self.client.open(
            path, method=method, json=body, query_string=query or {},
            headers={"Authorization": f"Bearer {token or self.admin_key}"})
        if expect is not None:
            assert response.status_code == expect, (response.status_code, response.get_data(as_text=True))
        if response.mimetype in ("application/json", "application/problem+json"):
            return response.get_json()
        return response

    def advance(self, **delta: float) -> None:
        self.clock.advance(**delta)

    # --- the tenant's catalog ----------------------------------------------------------------
    def key(self, *scopes: str) -> str:
        return self.call("POST", "/v1/keys", {"name": "k", "scopes": list(scopes)}, expect=201)["key"]

    def purpose(self, key: str, kind: str = "processing", **fields: Any) -> dict:
        body = {"kind": kind, "title": {"en": key.replace("_", " ").title()}, **fields}
        return self.call("PUT", f"/v1/purposes/{key}", body, expect=201)

    def policy(self, version: str, *, material: bool = False) -> dict:
        return self.call("POST", "/v1/policies", {"version": version, "material": material}, expect=201)

    # --- a user's decisions --------------------------------------------------------------------
    def decide(self, subject_id: str, policy: str = "v1", channel: str = "ios", **decisions: bool) -> dict:
        body = {"decisions": [{"purpose": p, "granted": g} for p, g in decisions.items()],
                "policy_version": policy, "source": {"channel": channel}, "locale": "zh-CN"}
        return self.call("POST", f"/v1/subjects/{subject_id}/consents", body, expect=201)

    def prompt(self, subject_id: str, *purposes: str) -> dict:
        body = {"purposes": list(purposes), "source": {"channel": "android"}}
        return self.call("POST", f"/v1/subjects/{subject_id}/prompts", body, expect=201)

    def erase(self, subject_id: str) -> None:
        self.call("DELETE", f"/v1/subjects/{subject_id}", expect=204)

    def state(self, subject_id: str) -> dict:
        return self.call("GET", f"/v1/subjects/{subject_id}/consents")

    # --- the auditor -----------------------------------------------------------------------------
    def export(self, token: str | None = None, **params: Any) -> bytes:
        response = self.call("GET", "/v1/audit/events", token=token, query=params)
        return response.get_data()

    def manifest(self, token: str | None = None, **params: Any) -> str:
        return self.call("GET", "/v1/audit/manifest", token=token, query=params)["manifest"]

    def jwks(self) -> dict:
        return self.client.get("/.well-known/jwks.json").get_json()


def lines(ndjson: bytes) -> list[dict]:
    return [json.loads(line) for line in ndjson.splitlines()]


def seed_ledger(api: Api) -> dict[str, Any]:
    """A small, varied ledger: three purposes, two policies, interleaved subjects, a prompt,
    a withdrawal, an erasure, and several events in one request (same recorded_at)."""
    api.purpose("personalized_push", "marketing")
    api.purpose("location", "device_permission")
    api.purpose("strictly_necessary", "processing", essential=True)
    api.policy("v1")
    api.decide("alice", personalized_push=True, location=True)
    api.advance(minutes=5)
    api.decide("bob", personalized_push=False)
    api.prompt("carol", "location")
    api.advance(minutes=5)
    api.decide("alice", personalized_push=False)
    api.decide("carol", location=True, strictly_necessary=True)
    api.advance(hours=1)
    api.decide("dave", personalized_push=True)
    api.erase("dave")
    api.decide("bob", location=True)
    api.advance(hours=1)
    api.policy("v2", material=True)
    api.decide("alice", policy="v2", personalized_push=True)
    api.decide("eve", policy="v2", location=False, personalized_push=True)
    return {"subjects": ["alice", "bob", "carol", "dave", "eve"]}
