"""The HTTP API as its clients use it: the operator creates tenants; a tenant's backend issues
keys, defines purposes, publishes policies and records its users' decisions; an app reads one
user's consents with a subject token; an auditor exports the ledger.

``Api`` sends each request through a Flask test client or, for a live server, ``HttpClient``
(the same ``open()`` call over urllib); every call names its credential (``token=``) and may
name the status it expects (``expect=``). ``Tenant`` is one tenant's credentials and the calls
its backend makes with them; its actions assert the status they need and return the JSON.
Bodies come from tests.builders, which carries the defaults.
"""

from __future__ import annotations

import json as jsonlib
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import Message
from typing import Any
from urllib.parse import urlencode

import jwt

from consent_api.domain.clock import Clock, format_ts, system_clock
from tests import builders

OPERATOR_TOKEN = "op-token-for-tests"  # CONSENT_ADMIN_TOKEN of every app and server the tests start
NO_BODY = object()


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


class Verbs:
    """get/post/put/delete over the class's call(method, path, json, **kw)."""

    def call(self, method: str, path: str, json: Any = NO_BODY, **kw: Any):
        raise NotImplementedError

    def get(self, path: str, **kw: Any):
        return self.call("GET", path, **kw)

    def post(self, path: str, json: Any = NO_BODY, **kw: Any):
        return self.call("POST", path, json, **kw)

    def put(self, path: str, json: Any = NO_BODY, **kw: Any):
        return self.call("PUT", path, json, **kw)

    def delete(self, path: str, **kw: Any):
        return self.call("DELETE", path, **kw)

    def patch(self, path: str, json: Any = NO_BODY, **kw: Any):
        return self.call("PATCH", path, json, **kw)


class Api(Verbs):
    """Requests as a client sends them. With ``validate``, every answer is checked against
    openapi.yaml (tests/support/openapi_contract.py) and noted in ``seen``."""

    def __init__(self, client: Any, *, validate: bool = False):
        self.client = client
        self.validate = validate
        self.seen: list[tuple[str | None, int]] = []  # (operationId, status) of each checked answer

    @property
    def clock(self) -> Clock:
        """The server's clock: the app's own behind a test client, the system's behind a live server."""
        app = getattr(self.client, "application", None)
        return app.extensions["consent_api.deps"].clock if app else system_clock

    def call(self, method: str, path: str, json: Any = NO_BODY, *, token: str | None = None,
             data: bytes | str | None = None, headers: dict[str, str] | None = None,
             query: dict[str, Any] | None = None, expect: int | None = None, **options: Any):
        """One request; ``options`` go to the client as they are (``environ_base=`` for Flask)."""
        if json is not NO_BODY:
            options["json"] = json
        if data is not None:
            options.update(data=data, content_type="application/json")
        if query:
            options["query_string"] = query
        response = self.client.open(path, method=method, headers={**bearer(token), **(headers or {})}, **options)
        if self.validate:
            from tests.support.openapi_contract import check_response  # loaded only where answers are checked

            self.seen.append((check_response(response), response.status_code))
        if expect is not None:
            assert response.status_code == expect, (method, path, response.status_code,
                                                    response.get_data(as_text=True))
        return response

    def new_tenant(self, name: str = "Acme", *, purposes: dict[str, dict] | None = builders.PUSH_PURPOSES,
                   roles: bool = False, token: str = OPERATOR_TOKEN) -> Tenant:
        """The operator creates a tenant, which publishes POLICY (in effect since 2026-01-01) and
        defines ``purposes`` (none of either with None); with ``roles``, a credential of each kind."""
        plain = Api(self.client) if self.validate else self  # a tenant's own calls go out unchecked
        created = plain.post("/v1/tenants", {"name": name}, token=token, expect=201).get_json()
        tenant = Tenant(plain, created["id"], created["admin_key"])
        if roles:
            tenant.issue_every_role()
        if purposes is not None:
            tenant.policy()
            tenant.define(purposes)
        return tenant

    def new_app_tenant(self, name: str = "示例商城 App") -> Tenant:
        """A mobile app's tenant: APP_PURPOSES, POLICY, a key of every role, a subject-token key."""
        return self.new_tenant(name, purposes=builders.APP_PURPOSES, roles=True)

    def jwks(self) -> dict:
        return self.get("/.well-known/jwks.json", expect=200).get_json()


@dataclass
class Tenant(Verbs):
    """One tenant as its backend sees it: its credentials and the calls it makes with them.
    Plain calls go out with the admin key unless they name another ``token``."""

    api: Api
    id: str
    admin: str  # the first admin key, shown once at creation
    writer: str = ""
    reader: str = ""
    auditor: str = ""
    publishable: str = ""
    stk_kid: str = ""  # an HS256 subject-token key
    stk_secret: str = ""
    key_ids: dict[str, str] = field(default_factory=dict)  # role -> key id

    @property
    def client(self) -> Any:
        return self.api.client

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.admin)

    def call(self, method: str, path: str, json: Any = NO_BODY, *, token: str | None = None, **kw: Any):
        return self.api.call(method, path, json, token=token or self.admin, **kw)

    # --- credentials ----------------------------------------------------------------------------
    def create_key(self, *scopes: str, type: str = "secret", origins=(), name: str = "test key") -> dict:
        body = {"name": name, "type": type, "scopes": list(scopes), "origins": list(origins)}
        return self.post("/v1/keys", body, expect=201).get_json()

    def issue_key(self, *scopes: str, type: str = "secret", origins=(), name: str = "test key") -> str:
        """A new key's secret (shown only now)."""
        return self.create_key(*scopes, type=type, origins=origins, name=name)["key"]

    def subject_token_key(self, alg: str = "HS256", **body: Any) -> dict:
        return self.post("/v1/subject-token-keys", {"alg": alg, **body}, expect=201).get_json()

    def issue_every_role(self) -> Tenant:
        """A writer, a reader and an auditor key, a publishable key for ORIGIN, an HS256 subject-token key."""
        for role, scope in (("writer", "consents:write"), ("reader", "consents:read"), ("auditor", "audit:read")):
            made = self.create_key(scope, name=role)
            setattr(self, role, made["key"])
            self.key_ids[role] = made["id"]
        self.publishable = self.issue_key(type="publishable", origins=[builders.ORIGIN], name="banner")
        stk = self.subject_token_key("HS256")
        self.stk_kid, self.stk_secret = stk["kid"], stk["secret"]
        return self

    def subject_token(self, subject_id: str, lifetime_s: int = 600, iat: int | None = None) -> str:
        """A subject token as the tenant's backend signs it (HS256, header kid), issued at iat
        (default: the server's time)."""
        iat = int(self.api.clock().timestamp()) if iat is None else iat
        return jwt.encode({"sub": subject_id, "iat": iat, "exp": iat + lifetime_s},
                          self.stk_secret.encode("utf-8"), algorithm="HS256", headers={"kid": self.stk_kid})

    def roles(self, subject_id: str = "u-1") -> dict[str, dict[str, str]]:
        """Authorization (and Origin) headers for every kind of caller of this tenant."""
        return {
            "admin": bearer(self.admin),
            "writer": bearer(self.writer),
            "reader": bearer(self.reader),
            "auditor": bearer(self.auditor),
            "publishable": {**bearer(self.publishable), "Origin": builders.ORIGIN},
            "subject": bearer(self.subject_token(subject_id, lifetime_s=6 * 3600)),
        }

    # --- the catalog ------------------------------------------------------------------------------
    def purpose(self, key: str = "push", kind: str = "processing", **overrides: Any) -> dict:
        response = self.put(f"/v1/purposes/{key}", builders.make_purpose(kind, **overrides))
        assert response.status_code in (200, 201), response.get_data(as_text=True)
        return response.get_json()

    def define(self, purposes: dict[str, dict]) -> None:
        """Define each purpose with the body given."""
        for key, body in purposes.items():
            response = self.put(f"/v1/purposes/{key}", body)
            assert response.status_code in (200, 201), response.get_data(as_text=True)

    def policy(self, version: str = builders.POLICY, **overrides: Any) -> dict:
        return self.post("/v1/policies", builders.make_policy(version, **overrides), expect=201).get_json()

    def vendor(self, key: str, **overrides: Any) -> dict:
        response = self.put(f"/v1/vendors/{key}", builders.make_vendor(**overrides))
        assert response.status_code in (200, 201), response.get_data(as_text=True)
        return response.get_json()

    def set_up_banner(self, origin: str, vendor: dict = builders.WEB_VENDOR) -> str:
        """A web shop's banner: WEB_PURPOSES, a vendor, a material POLICY in effect since
        yesterday and a publishable key for origin, which it returns."""
        self.define(builders.WEB_PURPOSES)
        self.vendor("umeng", **vendor)
        self.publishable = self.issue_key(type="publishable", origins=[origin], name="web banner")
        yesterday = format_ts(self.api.clock() - timedelta(days=1))
        self.policy(material=True, effective_at=yesterday, url="https://tea.example/privacy")
        return self.publishable

    # --- a user's decisions ---------------------------------------------------------------------
    def record(self, subject_id: str, *decisions: dict, token: str | None = None,
               headers: dict[str, str] | None = None, expect: int | None = None, **overrides: Any):
        """POST the decisions (tests.builders.decision) with builders.consents' defaults."""
        return self.post(f"/v1/subjects/{subject_id}/consents", builders.consents(*decisions, **overrides),
                         token=token, headers=headers, expect=expect)

    def grant(self, subject_id: str, *purposes: str, **overrides: Any) -> dict:
        return self.record(subject_id, *(builders.decision(p, True) for p in purposes), expect=201,
                           **overrides).get_json()

    def refuse(self, subject_id: str, *purposes: str, **overrides: Any) -> dict:
        return self.record(subject_id, *(builders.decision(p, False) for p in purposes), expect=201,
                           **overrides).get_json()

    def decide(self, subject_id: str, policy: str = builders.POLICY, channel: str = "ios",
               **granted: bool) -> dict:
        """One request deciding several purposes: decide("alice", push=True, location=False)."""
        return self.record(subject_id, *(builders.decision(p, g) for p, g in granted.items()),
                           policy_version=policy, channel=channel, expect=201).get_json()

    def prompt(self, subject_id: str, *purposes: str) -> dict:
        body = {"purposes": list(purposes), "source": {"channel": "android"}}
        return self.post(f"/v1/subjects/{subject_id}/prompts", body, expect=201).get_json()

    def erase(self, subject_id: str) -> None:
        self.delete(f"/v1/subjects/{subject_id}", expect=204)

    # --- reading them back ----------------------------------------------------------------------
    def state(self, subject_id: str, token: str | None = None) -> dict:
        return self.get(f"/v1/subjects/{subject_id}/consents", token=token, expect=200).get_json()

    def history(self, subject_id: str) -> list[dict]:
        """Every event of the subject, oldest first, through all pages."""
        events, cursor = [], None
        while True:
            query = {"limit": 500, **({"cursor": cursor} if cursor else {})}
            page = self.get(f"/v1/subjects/{subject_id}/history", query=query, expect=200).get_json()
            events += page["items"]
            cursor = page["next_cursor"]
            if not cursor:
                return events

    def decisions(self, subject_id: str) -> list[tuple[str, str]]:
        """(purpose, action) of every event of the subject, oldest first."""
        return [(e["purpose"], e["action"]) for e in self.history(subject_id)]

    # --- the auditor ----------------------------------------------------------------------------
    def export(self, token: str | None = None, **params: Any) -> bytes:
        return self.get("/v1/audit/events", token=token, query=params, expect=200).get_data()

    def manifest(self, token: str | None = None, **params: Any) -> str:
        return self.get("/v1/audit/manifest", token=token, query=params, expect=200).get_json()["manifest"]

    def jwks(self) -> dict:
        return self.api.jwks()


@dataclass
class HttpAnswer:
    """A live server's answer, read like a Flask test response."""

    status_code: int
    headers: Message
    body: bytes

    @property
    def mimetype(self) -> str:
        return self.headers.get_content_type()

    @property
    def json(self) -> Any:
        return self.get_json()

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def get_data(self, as_text: bool = False) -> bytes | str:
        return self.text if as_text else self.body

    def get_json(self) -> Any:
        return jsonlib.loads(self.body) if self.body and self.mimetype.endswith("json") else None


class HttpClient:
    """A live server behind the Flask test client's ``open()``: what Api needs, over urllib."""

    def __init__(self, base_url: str, timeout_s: float = 30):
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s

    def open(self, path: str, method: str = "GET", headers: dict[str, str] | None = None, json: Any = None,
             data: bytes | str | None = None, query_string: dict[str, Any] | None = None,
             content_type: str | None = None) -> HttpAnswer:
        if json is not None:
            data, content_type = jsonlib.dumps(json).encode(), "application/json"
        url = self.base_url + path + (("&" if "?" in path else "?") + urlencode(query_string) if query_string else "")
        request = urllib.request.Request(url, data=data.encode() if isinstance(data, str) else data, method=method)
        for name, value in {**({"Content-Type": content_type} if content_type else {}), **(headers or {})}.items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return HttpAnswer(response.status, response.headers, response.read())
        except urllib.error.HTTPError as error:
            return HttpAnswer(error.code, error.headers, error.read())
