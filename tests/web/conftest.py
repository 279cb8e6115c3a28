"""HTTP fixtures: an app on an in-memory SQLite store, and an ``api`` client whose every answer
is validated against openapi.yaml."""

from __future__ import annotations

import pytest

from consent_api.web.app import create_app
from tests.support.openapi_contract import check_response
from tests.support.world import OPERATOR_TOKEN, Tenant, bearer, make_tenant, seed_catalog

_NO_BODY = object()


def make_app(**overrides):
    settings = {"database_url": "sqlite:///:memory:", "admin_token": OPERATOR_TOKEN, **overrides}
    return create_app(settings)


class Api:
    """The test client, speaking as a token, checking each answer against the document."""

    def __init__(self, client):
        self.client = client
        self.seen: list[tuple[str | None, int]] = []

    def call(self, method: str, path: str, *, token: str | None = None, json=_NO_BODY,
             data: bytes | str | None = None, headers: dict | None = None, expect: int | None = None):
        kwargs = {}
        if json is not _NO_BODY:
            kwargs["json"] = json
        if data is not None:
            kwargs["data"] = data
            kwargs["content_type"] = "application/json"
        response = self.client.open(path, method=method, headers={**bearer(token), **(headers or {})},
                                    **kwargs)
        self.seen.append((check_response(response), response.status_code))
        if expect is not None:
            assert response.status_code == expect, (response.status_code, response.get_data(as_text=True))
        return response

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, json=_NO_BODY, **kw):
        return self.call("POST", path, json=json, **kw)

    def put(self, path, json=_NO_BODY, **kw):
        return self.call("PUT", path, json=json, **kw)

    def delete(self, path, **kw):
        return self.call("DELETE", path, **kw)

    # the (path, json, headers) shape tests.support.world builders take
    def world_post(self, path, body, headers):
        return self.client.post(path, json=body, headers=headers)

    def world_put(self, path, body, headers):
        return self.client.put(path, json=body, headers=headers)

    def tenant(self, name: str = "示例商城 App", catalog: bool = True) -> Tenant:
        tenant = make_tenant(self.world_post, name)
        if catalog:
            seed_catalog(self.world_put, self.world_post, tenant)
        return tenant


@pytest.fixture
def contract_client():
    """An app on the system clock (subject tokens are signed with real time here)."""
    return make_app().test_client()


@pytest.fixture
def api(contract_client) -> Api:
    return Api(contract_client)


@pytest.fixture
def operator() -> str:
    return OPERATOR_TOKEN
