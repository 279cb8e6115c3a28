"""Short builders with sensible defaults, so tests say only what matters to them."""

from __future__ import annotations

from typing import Any

POLICY = "2026-01"


def make_purpose(kind: str = "processing", **overrides: Any) -> dict[str, Any]:
    body = {"kind": kind, "title": {"en": "Personalised push", "zh-CN": "个性化推送"},
            "description": {"en": "Offers picked for you", "zh-CN": "为您推荐的优惠"}}
    body.update(overrides)
    return body


def make_policy(version: str = POLICY, effective_at: str = "2026-01-01T00:00:00Z",
                **overrides: Any) -> dict[str, Any]:
    body = {"version": version, "effective_at": effective_at, "url": f"https://example.com/privacy/{version}",
            "material": False, "summary": {"en": "Privacy policy", "zh-CN": "隐私政策"}}
    body.update(overrides)
    return body


def decision(purpose: str, granted: bool = True, **overrides: Any) -> dict[str, Any]:
    return {"purpose": purpose, "granted": granted, **overrides}


def consents(*decisions: dict[str, Any], policy_version: str = POLICY, channel: str = "ios",
             **overrides: Any) -> dict[str, Any]:
    body = {"decisions": list(decisions), "policy_version": policy_version,
            "source": {"channel": channel, "collection_point": "settings", "sdk_version": "1.0.0"},
            "locale": "zh-CN"}
    body.update(overrides)
    return body


def make_vendor(**overrides: Any) -> dict[str, Any]:
    body = {"name": "个推推送 SDK", "company": "每日互动股份有限公司",
            "data_collected": ["设备标识符"], "purposes": ["push"], "scenario": "消息推送",
            "privacy_policy_url": "https://example.com/getui/privacy"}
    body.update(overrides)
    return body
