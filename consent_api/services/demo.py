"""The demo tenant: the purposes a typical Chinese app asks for, in zh-CN and English."""

from __future__ import annotations

import contextlib
from datetime import datetime, timezone
from typing import Any

from consent_api.domain.model import Scope
from consent_api.errors import Conflict
from consent_api.services import catalog, tenants
from consent_api.services.deps import Deps
from consent_api.services.tenants import IssuedKey

DEMO_TENANT_NAME = "Demo app"
DEMO_ORIGINS = ("http://localhost:8000", "http://127.0.0.1:8000")
DEMO_POLICY = "2026-01"

PURPOSES: dict[str, dict[str, Any]] = {
    "account": {
        "kind": "processing", "essential": True,
        "title": {"zh-CN": "账号注册与登录", "en": "Account sign-up and sign-in"},
        "description": {"zh-CN": "提供产品基本功能所必需，无法关闭。",
                        "en": "Needed for the basic service; cannot be switched off."},
    },
    "personalized_push": {
        "kind": "processing",
        "title": {"zh-CN": "个性化推送", "en": "Personalised push notifications"},
        "description": {"zh-CN": "根据您的使用习惯推送您可能感兴趣的内容，可随时在设置中关闭。",
                        "en": "Notifications chosen from how you use the app; switch off any time in Settings."},
        "vendors": ["getui"],
    },
    "location": {
        "kind": "device_permission",
        "title": {"zh-CN": "位置信息", "en": "Location"},
        "description": {"zh-CN": "用于推荐附近的门店与服务，仅在您使用相关功能时获取。",
                        "en": "Used to suggest nearby stores and services, only while you use them."},
        "vendors": ["amap"],
    },
    "precise_location": {
        "kind": "device_permission", "sensitive": True,
        "title": {"zh-CN": "精确位置（敏感个人信息）", "en": "Precise location (sensitive)"},
        "description": {"zh-CN": "上门安装服务需要您的精确位置，我们将单独征得您的同意。",
                        "en": "On-site installation needs your precise location; we ask for it separately."},
    },
    "photo_album": {
        "kind": "device_permission",
        "title": {"zh-CN": "相册", "en": "Photo album"},
        "description": {"zh-CN": "用于上传头像、售后凭证等图片。", "en": "To upload an avatar or after-sales photos."},
    },
    "contacts": {
        "kind": "device_permission",
        "title": {"zh-CN": "通讯录", "en": "Contacts"},
        "description": {"zh-CN": "用于邀请好友，不会上传未经您选择的联系人。",
                        "en": "To invite friends; contacts you do not pick are never uploaded."},
    },
    "phone_number": {
        "kind": "device_permission",
        "title": {"zh-CN": "手机号码", "en": "Phone number"},
        "description": {"zh-CN": "用于一键登录与账号安全验证。",
                        "en": "For one-tap sign-in and account security checks."},
    },
    "marketing_sms": {
        "kind": "marketing", "reprompt_after_hours": 48,
        "title": {"zh-CN": "营销短信", "en": "Marketing text messages"},
        "description": {"zh-CN": "向您发送优惠活动短信，回复 TD 或在设置中即可退订。",
                        "en": "Offers by text message; reply STOP or unsubscribe in Settings."},
    },
    "marketing_email": {
        "kind": "marketing",
        "title": {"zh-CN": "营销邮件", "en": "Marketing e-mail"},
        "description": {"zh-CN": "向您发送活动与新品邮件，可随时退订。",
                        "en": "News and offers by e-mail; unsubscribe any time."},
    },
    "analytics_cookies": {
        "kind": "cookie", "validity_days": 365, "consent_mode": ["analytics_storage"],
        "title": {"zh-CN": "统计分析 Cookie", "en": "Analytics cookies"},
        "description": {"zh-CN": "帮助我们了解网站的使用情况，以改进产品。",
                        "en": "Help us understand how the site is used so we can improve it."},
    },
    "advertising_cookies": {
        "kind": "cookie", "validity_days": 365,
        "consent_mode": ["ad_storage", "ad_user_data", "ad_personalization"],
        "title": {"zh-CN": "广告 Cookie", "en": "Advertising cookies"},
        "description": {"zh-CN": "用于向您展示更相关的广告并衡量广告效果。",
                        "en": "Used to show you more relevant ads and measure them."},
    },
    "third_party_sdk": {
        "kind": "third_party", "vendors": ["getui", "amap", "bugly"],
        "title": {"zh-CN": "第三方 SDK 共享", "en": "Sharing with third-party SDKs"},
        "description": {"zh-CN": "向下列合作方的 SDK 提供实现功能所需的最少信息。",
                        "en": "Give the partners' SDKs listed below the least data their features need."},
    },
    "cross_border": {
        "kind": "cross_border",
        "title": {"zh-CN": "个人信息出境", "en": "Transfer of personal data abroad"},
        "description": {"zh-CN": "为向您提供海外仓储与客服，您的信息可能传输至境外，我们将单独征得您的同意。",
                        "en": "Overseas storage and support may move your data abroad; we ask separately."},
    },
}

VENDORS: dict[str, dict[str, Any]] = {
    "getui": {
        "name": "个推推送 SDK", "company": "每日互动股份有限公司",
        "data_collected": ["设备标识符（IMEI、Android ID、OAID）", "网络信息", "应用列表"],
        "purposes": ["personalized_push", "third_party_sdk"], "scenario": "向您推送消息通知",
        "privacy_policy_url": "https://docs.getui.com/privacy",
    },
    "amap": {
        "name": "高德地图 SDK", "company": "高德软件有限公司",
        "data_collected": ["位置信息", "设备标识符", "网络信息"],
        "purposes": ["location", "third_party_sdk"], "scenario": "定位与附近门店推荐",
        "privacy_policy_url": "https://lbs.amap.com/pages/privacy/",
    },
    "bugly": {
        "name": "腾讯 Bugly", "company": "深圳市腾讯计算机系统有限公司",
        "data_collected": ["设备型号", "操作系统版本", "崩溃日志"],
        "purposes": ["third_party_sdk"], "scenario": "崩溃分析与稳定性监控",
        "privacy_policy_url": "https://bugly.qq.com/v2/contract",
    },
}


def seed_demo(deps: Deps, origins: tuple[str, ...] = DEMO_ORIGINS
              ) -> tuple[str, IssuedKey, IssuedKey, bool]:
    """Create (or refresh the keys of) the demo tenant; returns (tenant id, admin, publishable, created)."""
    existing = next((t for t in deps.store.iter_tenants() if t.name == DEMO_TENANT_NAME), None)
    created = existing is None
    if existing is None:
        tenant, admin = tenants.create_tenant(deps, DEMO_TENANT_NAME)
        tenant_id = tenant.id
    else:
        tenant_id = existing.id
        admin = tenants.issue_key(deps, tenant_id, name="admin", type="secret",
                                  scopes=[Scope.ADMIN])
    for key, vendor in VENDORS.items():
        catalog.put_vendor(deps, tenant_id, key, vendor)
    for key, purpose in PURPOSES.items():
        catalog.put_purpose(deps, tenant_id, key, purpose)
    with contextlib.suppress(Conflict):  # published by an earlier run
        catalog.publish_policy(deps, tenant_id, {
            "version": DEMO_POLICY, "effective_at": datetime(2026, 1, 1, tzinfo=timezone.utc),
            "url": "https://example.com/privacy/2026-01", "material": True,
            "summary": {"zh-CN": "首次发布的隐私政策。", "en": "First published privacy policy."},
        })
    publishable = tenants.issue_key(deps, tenant_id, name="web banner", type="publishable",
                                    origins=list(origins))
    return tenant_id, admin, publishable, created
