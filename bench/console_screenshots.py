"""Screenshots of the console, English and Simplified Chinese, at a laptop width (1366 px) and
a tablet width (820 px), for docs/screenshots/.

    .venv/bin/python bench/console_screenshots.py [--out docs/screenshots]

Seeds a SQLite file with a mobile app's tenant and 30 days of decisions (through the services,
with the clock set to each day), serves it with `consent-api serve`, signs in with the admin key
in Debian's chromium and shows the overview, a subject, the catalog, the audit page, the webhooks
and the rights requests. Two webhook endpoints (one receiver answering, one failing) get the last
days' events from the real delivery worker, whose sending is stubbed by host name, so the log is
the worker's own; rights requests are opened over the month, some answered, the rest due soon or
overdue. Chinese glyphs need fonts-noto-cjk (installed by .ci/run).
"""

from __future__ import annotations

import random
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import live  # noqa: E402

from consent_api.domain.clock import FixedClock  # noqa: E402
from consent_api.domain.model import ActorType  # noqa: E402
from consent_api.outbound.sender import Answer  # noqa: E402
from consent_api.security.signing_keys import KeyRing  # noqa: E402
from consent_api.services import catalog, consents, requests, tenants, webhooks  # noqa: E402
from consent_api.services.delivery import Worker  # noqa: E402
from consent_api.services.deps import Deps, WebhookRules  # noqa: E402
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
    ("console-webhooks-{locale}.png", {"width": 1366, "height": 1100}, "/console/webhooks"),
    ("console-webhook-{locale}.png", {"width": 1366, "height": 1400}, "/console/webhooks/{webhook}?status=failed"),
    ("console-requests-{locale}.png", {"width": 1366, "height": 1000}, "/console/requests"),
    ("console-request-{locale}-tablet.png", {"width": 820, "height": 1180}, "/console/requests/{request}"),
]
HOOKS = {  # url, description, what the stubbed receiver answers
    "https://crm.example.com/hooks/consent": ("会员 CRM", 204),
    "https://push.example.com/v2/consent-events": ("推送平台", 503),
}
REQUESTS = [  # (day opened, user, type, what the user wrote, answer: None or (status, note, reason))
    (3, "user-1012", "copy", "请把我的订单和收货地址导出给我。", ("completed", "已通过站内信发送导出文件", None)),
    (6, "user-1044", "delete", "不再使用，请删除我的全部信息。", ("in_progress", "已转交数据团队核实身份", None)),
    (8, "user-1090", "access", "想知道你们保存了我的哪些位置信息。", None),
    (10, "user-1131", "correct", "手机号填错了，应为 138****5678。", ("rejected", None, "无法核实申请人身份，请通过已绑定手机号重新提交")),
    (12, "user-1163", "withdraw", None, None),
    (16, "user-1207", "explain", "个性化推荐是根据什么做的？", None),
    (22, "user-1288", "close_account", "请注销我的账号。", None),
    (27, "user-1340", "copy", None, None),
]


USER = requests.Origin({"channel": "ios", "collection_point": "settings/privacy"},
                       {"type": ActorType.SELF, "id": None, "reason": None})
OFFICER = requests.Origin({"channel": "server", "collection_point": "console"},
                          {"type": ActorType.AGENT, "id": "key_privacy_officer", "reason": None})


def stub_receivers(url: str, headers: dict[str, str], body: bytes) -> Answer:
    """What each example receiver answers (nothing leaves the machine)."""
    return Answer(HOOKS[url][1], 38 + len(body) % 40)


def drain(worker: Worker) -> None:
    """Rounds until one finds nothing to send (retries not yet due wait for a later day)."""
    for _ in range(100):
        done = worker.run_once()
        if not (done.derived or done.sent):
            return


def seed(path: Path) -> tuple[str, dict[str, str]]:
    """A shopping app's tenant with 30 days of decisions, webhooks and rights requests; its admin
    key and the ids the shots name (webhook: the failing endpoint; request: one due soon)."""
    store = SQLiteStore(str(path))
    start = datetime.now(timezone.utc).replace(hour=2, minute=0, second=0, microsecond=0) - timedelta(days=DAYS)
    clock = FixedClock(start)
    deps = Deps(store, clock, KeyRing(store, clock), webhooks=WebhookRules(allow_private=True))
    worker = Worker(deps, send=stub_receivers, rng=random.Random(3))
    hooks: list[str] = []
    opened_by = {}
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
        if day == DAYS - 3:
            hooks = [webhooks.create(deps, tenant.id, url, description=text).webhook.id
                     for url, (text, _) in HOOKS.items()]
        if day >= DAYS - 3:
            drain(worker)
        for opened, user, kind, details, answer in REQUESTS:
            if day == opened:
                made = opened_by[user] = requests.open_request(deps, tenant.id, user, kind, details, USER, "ios")
                if answer:
                    clock.now += timedelta(hours=5)
                    requests.answer(deps, tenant.id, made.id, *answer, OFFICER)
        requests.tick(deps, clock.now)
    clock.now = start + timedelta(days=DAYS, hours=1)
    webhooks.send_test(deps, tenant.id, hooks[0])
    subject = "user-1007"
    consents.record_prompts(deps, tenant.id, subject, ["precise_location"], {"channel": "ios"}, "zh-CN", {})
    drain(worker)
    worker.close()
    store.close()
    return admin.secret, {"webhook": hooks[1], "request": opened_by["user-1163"].id}


def main() -> int:
    shots = live.screenshots_dir(__doc__)
    with live.workdir("consent-console-shots-") as tmp:
        db = tmp / "consent.db"
        admin, ids = seed(db)
        # The worker stays off: the example receivers are not on this machine.
        with live.servers.serving(tmp, workers=1, database_url=f"sqlite:///{db}",
                                  env={"CONSENT_WEBHOOK_WORKER": "off"}) as server, \
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
                    page.goto(server.url + path.format(**ids))
                    page.wait_for_load_state("networkidle")
                    out = shots / name.format(locale=locale)
                    page.screenshot(path=str(out), full_page=False)
                    print(f"wrote {out}")
                    context.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
