"""Screenshots of the banner and the preferences panel, English and Simplified Chinese, at a
desktop width and at 320 px, for docs/screenshots/.

    .venv/bin/python bench/screenshots.py [--out docs/screenshots]

Runs a live `consent-api serve` and a page on another origin in Debian's chromium, exactly as
the end-to-end tests do. Chinese glyphs need fonts-noto-cjk (installed by .ci/run).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import live  # noqa: E402

PAGE = {
    "en": ("en", "Tea shop", "Green tea, oolong and pu'er, picked in spring and shipped from Hangzhou.",
           "Cookie settings"),
    "zh-CN": ("zh-CN", "茶叶小铺", "明前龙井、安溪铁观音、云南普洱，春季采摘，杭州直发。", "Cookie 设置"),
}
SHOTS = [  # file name, viewport, layer
    ("banner-{locale}.png", {"width": 1024, "height": 640}, "banner"),
    ("banner-{locale}-320.png", {"width": 320, "height": 640}, "banner"),
    ("panel-{locale}.png", {"width": 1024, "height": 900}, "panel"),
    ("panel-{locale}-320.png", {"width": 320, "height": 640}, "panel"),
]


def page_html(locale: str, api: str, pk: str) -> str:
    lang, title, text, settings = PAGE[locale]
    return f"""<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>
<style>body{{font:16px/1.6 system-ui,"Noto Sans CJK SC",sans-serif;max-width:60ch;margin:0 auto;padding:24px;color:#333}}
h1{{font-size:1.6em}}</style>
<script src="{api}/sdk/consent.js?key={pk}" async></script>
</head><body><h1>{title}</h1><p>{text}</p><p>{text}</p>
<button type="button" data-consent-open>{settings}</button></body></html>"""


def main() -> int:
    shots = live.screenshots_dir(__doc__)
    with live.workdir("consent-shots-") as tmp:
        pages = tmp / "pages"
        pages.mkdir()
        (tmp / "server").mkdir()
        with live.api_server(tmp / "server") as api, live.page_server(pages) as origin, \
                live.chromium() as browser:
            for locale in PAGE:
                # Vendor disclosures are the tenant's own text, in the language of its policy.
                vendor = live.VENDOR_ZH if locale == "zh-CN" else live.VENDOR
                pk = live.make_tenant(api, origin, vendor).publishable
                (pages / f"{locale}.html").write_text(page_html(locale, api, pk), encoding="utf-8")
                for name, viewport, layer in SHOTS:
                    context = browser.new_context(viewport=viewport, reduced_motion="reduce")
                    page = context.new_page()
                    page.goto(f"{origin}/{locale}.html")
                    page.locator("#consent-sdk section").wait_for()
                    if layer == "panel":
                        page.locator('[data-consent-action="preferences"]').click()
                        page.locator("#consent-sdk details summary").first.click()
                        page.mouse.move(0, 0)
                    page.evaluate("document.fonts.ready")
                    target = shots / name.format(locale=locale)
                    page.screenshot(path=str(target))
                    print(target.relative_to(live.REPO) if target.is_relative_to(live.REPO) else target)
                    context.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
