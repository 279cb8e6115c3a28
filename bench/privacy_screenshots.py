"""Screenshots of the privacy center (its main page, the separate-consent step and the request
form) in Simplified Chinese and English, at a desktop width and at a phone's 360 px, for
docs/screenshots/.

    .venv/bin/python bench/privacy_screenshots.py [--out docs/screenshots]

A live `consent-api serve` and Debian's chromium, as in the end-to-end tests; the purposes use
the wording of the privacy policies in shared/seeds. Chinese needs fonts-noto-cjk.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import live  # noqa: E402

from tests.support.api import Api, HttpClient  # noqa: E402

PURPOSES = {
    "account": {"kind": "processing", "essential": True,
                "title": {"zh-CN": "账号注册与登录", "en": "Account sign-up and sign-in"},
                "description": {"zh-CN": "注册、登录及保障账号安全所必需。",
                                "en": "Needed to sign up, sign in and keep your account safe."}},
    "personalized_push": {
        "kind": "processing", "title": {"zh-CN": "个性化推送", "en": "Personalised push"},
        "description": {"zh-CN": "结合您的设备标识符与使用记录形成用户画像，优先向您展示您可能感兴趣的产品或服务信息。",
                        "en": "We combine your device identifiers with how you use the app into a profile, "
                              "to show you first the products you may like."}},
    "location": {"kind": "device_permission", "title": {"zh-CN": "位置信息", "en": "Location"},
                 "description": {"zh-CN": "用于考勤定位、在聊天中发送位置；使用前会向您弹窗询问。",
                                 "en": "For attendance check-in and sending your location in chat; "
                                       "asked each time before use."}},
    "photo_album": {"kind": "device_permission", "title": {"zh-CN": "相册", "en": "Photo album"},
                    "description": {"zh-CN": "用于上传和发送图片。",
                                    "en": "To upload and send pictures."}},
    "marketing_sms": {"kind": "marketing", "title": {"zh-CN": "营销活动通知", "en": "Marketing messages"},
                      "description": {"zh-CN": "向您发送营销活动通知、商业性电子广告；您可随时退订。",
                                      "en": "Notices of offers and commercial messages; unsubscribe at any time."}},
    "face_verification": {
        "kind": "processing", "sensitive": True,
        "title": {"zh-CN": "人脸识别实人认证", "en": "Face verification"},
        "description": {"zh-CN": "开通直播功能时，通过人脸扫描完成实人认证。",
                        "en": "Before you stream live, a face scan checks that it is really you."}},
}
# A desktop page whole; a phone's first screens as the person sees them.
WIDTHS = {"": {"width": 1024, "height": 900}, "-360": {"width": 360, "height": 780}}


def make_tenant(api: str):
    return Api(HttpClient(api)).new_tenant("知行商城", purposes=PURPOSES, roles=True)


def subject_with_history(tenant, subject: str) -> str:
    tenant.record(subject, *[{"purpose": p, "granted": True} for p in ("personalized_push", "location")],
                  token=tenant.writer, expect=201, channel="ios")
    tenant.record(subject, {"purpose": "marketing_sms", "granted": False}, token=tenant.writer, expect=201,
                  channel="android")
    tenant.post(f"/v1/subjects/{subject}/requests", {"type": "copy"}, token=tenant.subject_token(subject),
                expect=201)
    return subject


def open_center(browser, tenant, subject, locale: str, viewport: dict):
    link = tenant.post(f"/v1/subjects/{subject}/privacy-center-links", token=tenant.writer,
                       expect=201).get_json()["url"]
    context = browser.new_context(viewport=viewport, reduced_motion="reduce", locale=locale,
                                  extra_http_headers={"Accept-Language": locale})
    page = context.new_page()
    page.goto(link)
    return context, page


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=live.REPO / "docs" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with live.workdir("privacy-shots-") as tmp, live.api_server(tmp) as api, live.chromium() as browser:
        tenant = make_tenant(api)
        for locale in ("zh-CN", "en"):
            for suffix, viewport in WIDTHS.items():
                subject = subject_with_history(tenant, f"u-{locale}{suffix}")
                context, page = open_center(browser, tenant, subject, locale, viewport)
                page.evaluate("document.fonts.ready")
                page.screenshot(full_page=not suffix, **_path(args, "privacy-home", locale, suffix))
                page.locator("#p-face_verification").check()
                page.locator("[data-action=save]").click()
                page.locator("[data-action=confirm-separate]").wait_for()
                page.screenshot(full_page=not suffix, **_path(args, "privacy-confirm", locale, suffix))
                page.locator("[data-action=decline-separate]").click()
                page.goto(page.url.split("/privacy/")[0] + "/privacy/requests")
                page.locator("select[name=type]").select_option("delete")
                page.locator("textarea[name=details]").fill(
                    "请删除我的账号下保存的收货地址和浏览记录。" if locale == "zh-CN"
                    else "Please delete the delivery addresses and browsing history kept in my account.")
                page.locator("[data-action=send-request]").click()
                page.locator("[data-notice=sent]").wait_for()
                page.screenshot(full_page=not suffix, **_path(args, "privacy-request", locale, suffix))
                context.close()
    return 0


def _path(args, name: str, locale: str, suffix: str) -> dict:
    target = args.out / f"{name}-{locale}{suffix}.png"
    print(target.relative_to(live.REPO) if target.is_relative_to(live.REPO) else target)
    return {"path": str(target)}


if __name__ == "__main__":
    sys.exit(main())
