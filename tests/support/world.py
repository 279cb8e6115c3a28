"""Builders for a tenant as a client sees it: credentials of every kind, a catalog, subject tokens."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import jwt

OPERATOR_TOKEN = "op-test-token-not-secret"
ORIGIN = "https://www.example.cn"
POLICY = "2026-01"

PURPOSES = {
    "account": {"kind": "processing", "essential": True,
                "title": {"zh-CN": "账号注册与登录", "en": "Account sign-up and sign-in"}},
    "personalized_push": {"kind": "processing",
                          "title": {"zh-CN": "个性化推送", "en": "Personalised push notifications"},
                          "description": {"zh-CN": "根据您的使用习惯推送您可能感兴趣的内容。",
                                          "en": "Notifications chosen from how you use the app."}},
    "location": {"kind": "device_permission", "title": {"zh-CN": "位置信息", "en": "Location"}},
    "precise_location": {"kind": "device_permission", "sensitive": True,
                         "title": {"zh-CN": "精确位置", "en": "Precise location"}},
    "marketing_sms": {"kind": "marketing", "title": {"zh-CN": "营销短信", "en": "Marketing text messages"},
                      "reprompt_after_hours": 48},
    "analytics_cookies": {"kind": "cookie", "title": {"zh-CN": "统计分析 Cookie", "en": "Analytics cookies"},
                          "validity_days": 180, "consent_mode": ["analytics_storage"]},
}


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


@dataclass
class Tenant:
    id: str
    admin: str
    writer: str = ""
    reader: str = ""
    auditor: str = ""
    publishable: str = ""
    stk_kid: str = ""
    stk_secret: str = ""
    key_ids: dict[str, str] = field(default_factory=dict)

    def subject_token(self, subject_id: str, lifetime_s: int = 600, now: float | None = None) -> str:
        """A subject token as the tenant's backend signs it (HS256, header kid)."""
        iat = int(now if now is not None else time.time())
        return jwt.encode({"sub": subject_id, "iat": iat, "exp": iat + lifetime_s},
                          self.stk_secret.encode("utf-8"), algorithm="HS256",
                          headers={"kid": self.stk_kid})

    def roles(self, subject_id: str = "u-1") -> dict[str, dict[str, str]]:
        """Authorization (and Origin) headers for every kind of caller of this tenant."""
        return {
            "admin": bearer(self.admin),
            "writer": bearer(self.writer),
            "reader": bearer(self.reader),
            "auditor": bearer(self.auditor),
            "publishable": {**bearer(self.publishable), "Origin": ORIGIN},
            "subject": bearer(self.subject_token(subject_id, lifetime_s=6 * 3600)),
        }


def _json(response, status: int):
    assert response.status_code == status, (response.status_code, response.text
                                            if hasattr(response, "text") else response.get_data(as_text=True))
    return response.json() if callable(getattr(response, "json", None)) else response.get_json()


def make_tenant(post, name: str = "示例商城 App") -> Tenant:
    """Create a tenant and one credential of every kind through the API.

    ``post(path, json, headers)`` is a test client's or requests' POST."""
    created = _json(post("/v1/tenants", {"name": name}, bearer(OPERATOR_TOKEN)), 201)
    tenant = Tenant(id=created["id"], admin=created["admin_key"])
    admin = bearer(tenant.admin)
    for role, scopes in (("writer", ["consents:write"]), ("reader", ["consents:read"]),
                         ("auditor", ["audit:read"])):
        key = _json(post("/v1/keys", {"name": role, "scopes": scopes}, admin), 201)
        setattr(tenant, role, key["key"])
        tenant.key_ids[role] = key["id"]
    pk = _json(post("/v1/keys", {"name": "banner", "type": "publishable", "origins": [ORIGIN]}, admin), 201)
    tenant.publishable = pk["key"]
    stk = _json(post("/v1/subject-token-keys", {"alg": "HS256"}, admin), 201)
    tenant.stk_kid, tenant.stk_secret = stk["kid"], stk["secret"]
    return tenant


def seed_catalog(put, post, tenant: Tenant, purposes: dict | None = None) -> None:
    """A policy in effect since yesterday and the common app purposes."""
    admin = bearer(tenant.admin)
    since = (datetime.now(timezone.utc) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    _json(post("/v1/policies", {"version": POLICY, "effective_at": since,
                                "url": "https://www.example.cn/privacy/2026-01",
                                "summary": {"zh-CN": "首次发布", "en": "First version"}}, admin), 201)
    for key, body in (purposes or PURPOSES).items():
        response = put(f"/v1/purposes/{key}", body, admin)
        assert response.status_code in (200, 201), response


def decisions(*pairs: tuple[str, bool], channel: str = "android", **extra) -> dict:
    """A DecisionsIn body: decisions(("personalized_push", True), ("marketing_sms", False))."""
    return {"decisions": [{"purpose": p, "granted": g, **({"separate": True} if p == "precise_location" else {})}
                          for p, g in pairs],
            "policy_version": POLICY, "source": {"channel": channel, "collection_point": "settings/privacy"},
            "locale": "zh-CN", **extra}
