"""Fixtures that read like a client's actions: a fixed clock, an app on a fresh store,
an operator, and tenants with their admin keys."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from consent_api.config import Settings
from consent_api.domain.clock import FixedClock
from consent_api.web.app import create_app
from tests import builders

OPERATOR_TOKEN = "op-token-for-tests"
START = "2026-03-01T08:00:00Z"


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path}/consent.db", admin_token=OPERATOR_TOKEN)


@pytest.fixture
def app(settings, clock):
    app = create_app(settings, clock=clock)
    yield app
    app.extensions["consent_api.deps"].store.close()


@pytest.fixture
def client(app):
    return app.test_client()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class TenantActions:
    """One tenant as its backend sees it: its admin key and the calls it makes."""

    client: Any
    id: str
    key: str
    purposes: list[str] = field(default_factory=list)

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.key)

    def get(self, path: str, key: str | None = None, **kw):
        return self.client.get(path, headers=bearer(key or self.key), **kw)

    def post(self, path: str, json: Any = None, key: str | None = None, headers=None, **kw):
        return self.client.post(path, json=json, headers={**bearer(key or self.key), **(headers or {})}, **kw)

    def put(self, path: str, json: Any = None, key: str | None = None, **kw):
        return self.client.put(path, json=json, headers=bearer(key or self.key), **kw)

    def delete(self, path: str, key: str | None = None, **kw):
        return self.client.delete(path, headers=bearer(key or self.key), **kw)

    def purpose(self, key: str = "push", **overrides: Any) -> dict:
        response = self.put(f"/v1/purposes/{key}", builders.make_purpose(**overrides))
        assert response.status_code in (200, 201), response.json
        return response.json

    def policy(self, version: str = builders.POLICY, **overrides: Any) -> dict:
        response = self.post("/v1/policies", builders.make_policy(version, **overrides))
        assert response.status_code == 201, response.json
        return response.json

    def record(self, subject: str, *decisions: dict, key: str | None = None, headers=None, **overrides):
        return self.post(f"/v1/subjects/{subject}/consents", builders.consents(*decisions, **overrides),
                         key=key, headers=headers)

    def grant(self, subject: str, *purposes: str, **overrides) -> dict:
        response = self.record(subject, *(builders.decision(p, True) for p in purposes), **overrides)
        assert response.status_code == 201, response.json
        return response.json

    def refuse(self, subject: str, *purposes: str, **overrides) -> dict:
        response = self.record(subject, *(builders.decision(p, False) for p in purposes), **overrides)
        assert response.status_code == 201, response.json
        return response.json

    def state(self, subject: str, key: str | None = None) -> dict:
        response = self.get(f"/v1/subjects/{subject}/consents", key=key)
        assert response.status_code == 200, response.json
        return response.json

    def issue_key(self, *scopes: str, type: str = "secret", origins=()) -> str:
        body = {"name": "test key", "type": type, "scopes": list(scopes), "origins": list(origins)}
        response = self.post("/v1/keys", body)
        assert response.status_code == 201, response.json
        return response.json["key"]


@pytest.fixture
def new_tenant(client):
    """Make tenants on demand: new_tenant("Acme") with the default catalog of 'push' + policy."""

    def make(name: str = "Acme", *, catalog: bool = True) -> TenantActions:
        response = client.post("/v1/tenants", json={"name": name}, headers=bearer(OPERATOR_TOKEN))
        assert response.status_code == 201, response.json
        tenant = TenantActions(client, response.json["id"], response.json["admin_key"])
        if catalog:
            tenant.purpose("push")
            tenant.policy()
        return tenant

    return make


@pytest.fixture
def tenant(new_tenant) -> TenantActions:
    return new_tenant()


def pytest_sessionfinish(session, exitstatus):
    """In CI every collected test must run: a skip means a tool is missing, and that fails."""
    import os

    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if os.environ.get("CONSENT_FAIL_ON_SKIP") == "1" and skipped and exitstatus == 0:
        reporter.write_line(f"FAILED: {len(skipped)} test(s) skipped; CI requires every test to run",
                            red=True)
        session.exitstatus = 1
