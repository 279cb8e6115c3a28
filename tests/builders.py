"""Short builders with sensible defaults, so tests say only what matters to them, and the
catalogs test tenants start from."""

from __future__ import annotations

from typing import Any

POLICY = "2026-01"  # the first policy version of every test tenant
ORIGIN = "https://www.example.cn"  # where an app tenant's publishable key may be used


def make_purpose(kind: str = "processing", **overrides: Any) -> dict[str, Any]:
    body = {"kind": kind, "title": {"en": "Personalised push", "zh-CN": "个性化推送"},
            "description": {"en": "Offers picked for you", "zh-CN": "为您推荐的优惠"}}
    body.update(overrides)
    return body


def make_policy(version: str = POLICY, effective_at: str | None = "2026-01-01T00:00:00Z",
                **overrides: Any) -> dict[str, Any]:
    """A policy version; ``effective_at=None`` leaves it out, so it takes effect when published."""
    body = {"version": version, "effective_at": effective_at, "url": f"https://example.com/privacy/{version}",
            "material": False, "summary": {"en": "Privacy policy", "zh-CN": "隐私政策"}}
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


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


# The catalog of a default test tenant (the `tenant` fixture): one purpose.
PUSH_PURPOSES = {"push": make_purpose()}

# A mobile app's purposes, as a Chinese shopping app lists them: an essential one, a sensitive
# one (asked separately), a cookie with a validity, a marketing one with the 48 h cooldown.
APP_PURPOSES = {
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

# A web shop's banner: one essential cookie, three choices, and a sensitive purpose the banner
# never shows (it is asked in the app).
WEB_PURPOSES = {
    "necessary": {"kind": "cookie", "essential": True,
                  "title": {"en": "Strictly necessary", "zh-CN": "必要 Cookie"},
                  "description": {"en": "Sign-in, basket and security.", "zh-CN": "登录、购物车与安全。"}},
    "analytics": {"kind": "cookie", "consent_mode": ["analytics_storage"],
                  "title": {"en": "Analytics", "zh-CN": "统计分析"},
                  "description": {"en": "Counts visits so we can improve the shop.",
                                  "zh-CN": "统计访问量，用于改进网站。"}},
    "ads": {"kind": "marketing", "consent_mode": ["ad_storage", "ad_user_data", "ad_personalization"],
            "title": {"en": "Personalised ads", "zh-CN": "个性化广告"},
            "description": {"en": "Ads that match your interests, on this site and others.",
                            "zh-CN": "根据您的兴趣在本站及其他网站展示广告。"}},
    "sharing": {"kind": "third_party",
                "title": {"en": "Sharing with partners", "zh-CN": "与合作方共享"},
                "description": {"en": "Your order history, shared with our delivery partner.",
                                "zh-CN": "与配送合作方共享您的订单记录。"}},
    "faceid": {"kind": "processing", "sensitive": True,
               "title": {"en": "Face recognition", "zh-CN": "人脸识别"}},
}
WEB_VENDOR = {"name": "Umeng analytics SDK", "company": "友盟同欣（北京）科技有限公司",
              "data_collected": ["device identifiers", "pages visited"], "purposes": ["analytics"],
              "scenario": "Visit statistics", "privacy_policy_url": "https://www.umeng.com/policy"}
WEB_VENDOR_ZH = {"name": "友盟统计 SDK", "company": "友盟同欣（北京）科技有限公司",
                 "data_collected": ["设备标识符（OAID、Android ID）", "访问的页面"], "purposes": ["analytics"],
                 "scenario": "统计网站访问量", "privacy_policy_url": "https://www.umeng.com/policy"}
