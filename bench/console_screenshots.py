"""Screenshots of the console, English and Simplified Chinese, at a laptop width (1366 px) and
a tablet width (820 px), for docs/screenshots/.

    .venv/bin/python bench/console_screenshots.py [--out docs/screenshots]

Seeds a SQLite file with a mobile app's tenant and 30 days of decisions (through the services,
with the clock set to each day), serves it with `consent-api serve`, signs in with the admin key
in Debian's chromium and shows the overview, a subject, the catalog and the audit page. Chinese
glyphs need fonts-noto-cjk (installed by .ci/run).
"""

from __future__ import annotations

import argparse
import random
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import live  # noqa: E402

from consent_api.domain.clock import FixedClock  # noqa: E402
from consent_api.security.signing_keys import KeyRing  # noqa: E402
from consent_api.services import catalog, consents, tenants  # noqa: E402
from consent_api.services.deps import Deps  # noqa: E402
from consent_api.store.sqlite import SQLiteStore  # noqa: E402
from tests.builders import APP_PURPOSES  # noqa: E402

DAYS = 30
CHANNELS = ("ios", "android", "ios", "android", "harmonyos", "miniprogram", "web")
SHOTS = [  # file name, viewport, path (after sign-in)
    ("console-overview-{locale}.png", {"width": 1366, "height": 1500}, "/console/?days=30"),
    ("console-overview-{locale}-tablet.png", {"width": 820, "height": 1180}, "/console/?days=30"),
    ("console-subject-{locale}.png", {"width": 1366, "height": 1300}, "/console/subjects/user-1007"),
    ("console-subject-{locale}-tablet.png", {"width": 820, "height": 1180}, "/console/subjects/user-1007"),
    ("console-purposes-{locale}.png", {"width": 1366, "height": 1100}, "/console/purposes"),
    ("console-audit-{locale}-tablet.png", {"width": 820, "height": 1180}, "/console/audit"),
]


def seed(path: Path) -> str:
    """A shopping app's tenant with 30 days of decisions; its admin key."""
    store = SQLiteStore(str(path))
    start = datetime.now(timezone.utc).replace(hour=2, minute=0, second=0, microsecond=0) - timedelta(days=DAYS)
    clock = FixedClock(start)
    deps = Deps(store, clock, KeyRing(store, clock))
    tenant, admin = tenants.create_tenant(deps, "示例商城 App")
    for key, body in APP_PURPOSES.items():
        catalog.put_purpose(deps, tenant.id, key, body)
    catalog.publish_policy(deps, tenant.id, {"version": "2026-01", "effective_at": start - timedelta(days=60)})
    rng = random.Random(7)
    choices = ["personalized_push", "location", "marketing_sms", "analytics_cookies"]
    shares = {"personalized_push": 0.72, "location": 0.55, "marketing_sms": 0.35, "analytics_cookies": 0.6}
    n = 1000
    for day in range(DAYS + 1):
        clock.now = start + timedelta(days=day)
        if day == 20:  # a material policy change: earlier grants need re-consent
            catalog.publish_policy(deps, tenant.id, {"version": "2026-02", "material": True,
                                                     "effective_at": clock.now})
        version = "2026-02" if day >= 20 else "2026-01"
        for _ in range(rng.randint(25, 45)):
            n += 1
            clock.now += timedelta(minutes=rng.randint(1, 20))
            decisions = [consents.Decision(p, rng.random() < shares[p] + (0.1 if day > 15 else 0))
                         for p in rng.sample(choices, rng.randint(1, 4))]
            channel = rng.choice(CHANNELS)
            consents.record(deps, tenant.id, f"user-{n}", consents.Submission(
                decisions, version, {"channel": channel, "collection_point": "onboarding"}, "zh-CN"))
            if rng.random() < 0.15:
                earlier = f"user-{rng.randint(1001, n)}"
                if store.get_subject(tenant.id, earlier) is not None:
                    consents.withdraw_all(deps, tenant.id, earlier, {"channel": channel}, "zh-CN", {}, None)
    clock.now = start + timedelta(days=DAYS, hours=1)
    subject = "user-1007"
    consents.record_prompts(deps, tenant.id, subject, ["precise_location"], {"channel": "ios"}, "zh-CN", {})
    store.close()
    return admin.secret


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=live.REPO / "docs" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with live.workdir("consent-console-shots-") as tmp:
        db = tmp / "consent.db"
        admin = seed(db)
        with live.servers.serving(tmp, workers=1, database_url=f"sqlite:///{db}") as server, \
                live.chromium() as browser:
            for locale in ("en", "zh-CN"):
                for name, viewport, path in SHOTS:
                    context = browser.new_context(viewport=viewport, locale=locale,
                                                  extra_http_headers={"Accept-Language": locale})
                    page = context.new_page()
                    page.goto(server.url + "/console/sign-in")
                    page.fill("input[name=api_key]", admin)
                    page.click("[data-action=sign-in]")
                    page.wait_for_url("**/console/")
                    page.goto(server.url + path)
                    page.wait_for_load_state("networkidle")
                    out = args.out / name.format(locale=locale)
                    page.screenshot(path=str(out), full_page=False)
                    print(f"wrote {out}")
                    context.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
