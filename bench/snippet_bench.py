"""Our consent snippet against the popular open-source banners, same page, same run.

    .venv/bin/python bench/snippet_bench.py [--runs 5] [--deadline 300]

Starts `consent-api serve` (temp SQLite) and a gzip-capable static server on another origin,
installs the peers from npm into a temp dir (never into the repo), and loads one page in
headless Debian chromium in these variants: no banner (baseline), ours with the config inlined
into the script (`/sdk/consent.js?key=pk_...`) loaded `async` (the documented embed) and
`defer`, ours with the config request (async), and
vanilla-cookieconsent 3, Klaro 0.7 and Osano's cookieconsent 3, each embedded as its README
says. Every load gets a fresh profile. Two profiles: desktop (no throttling) and mobile
(4x CPU slowdown, 150 ms RTT, 1.6 Mbps, 390 px wide), as Lighthouse's mobile preset.
vanilla-cookieconsent is run with `hideFromBots: false`: by default it does not show at all
when navigator.webdriver is true.

Per variant (medians over --runs):
- lib gz B: the library's JS + CSS, gzip -9 (ours: consent.js); +config: everything the page
  loads for the banner, its configuration included (ours inlined: the script with the
  tenant's config in both languages; ours with the request: script + config JSON).
- DCL: the page's DOMContentLoaded (navigation timing), and its delta to the baseline.
- DCL->banner: from DOMContentLoaded to the first animation frame in which the banner element
  has a box and is displayed, visible and not transparent (MutationObserver + rAF). Negative:
  drawn before DOMContentLoaded fired.
- FCP: first contentful paint, delta and ratio to the baseline.
- script: CDP Performance.getMetrics ScriptDuration once the banner is shown (+300 ms),
  delta and ratio to the baseline (the measuring observer runs in every variant); desktop
  counts the main thread's CPU time, mobile its wall time under the 4x CPU slowdown.
Once per variant (desktop): keyboard accept = Tab (at most 40 presses) reaches an accept
control and Enter records consent; GPC read = the page read navigator.globalPrivacyControl.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import live  # noqa: E402

PEERS = {"vanilla-cookieconsent": "3", "klaro": "0.7", "cookieconsent": "3"}
BUDGET = {"gzip": 6144, "frame_ms": 1000 / 60, "drawn_ms": 150, "fcp_ms": 20, "script_ms": 5}
ACCEPT = ("accept", "accept all", "allow", "allow all", "allow cookies", "that's ok", "ok", "agree",
          "i agree")

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Tea shop</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:60ch;margin:0 auto;padding:16px}}</style>
{head}
</head><body>
<header><a href="#main" id="first-link">Skip to content</a> <a href="#teas">Teas</a> <a href="#about">About</a></header>
<main id="main"><h1>Tea shop</h1>
<p>Green tea, oolong and pu'er, picked in spring and shipped from Hangzhou within a week.</p>
<h2 id="teas">Our teas</h2>
<p>Longjing from the West Lake hills, Tieguanyin from Anxi, aged sheng pu'er from Yunnan.</p>
<h2 id="about">About us</h2>
<p>A family business since 1987. We visit every garden we buy from.</p>
</main>{body}</body></html>"""

# Runs before any page script. A MutationObserver notices the banner element; from then on
# each animation frame checks whether it is drawn (box, displayed, visible, not transparent:
# some banners fade in) and stamps the first frame that draws it. Only querySelector runs per
# mutation, so the probe costs every variant, the baseline included, about the same.
PROBE = """(() => {
  const m = window.__bench = {seen: null, gpcRead: false};
  if (%(gpc)s) Object.defineProperty(navigator, 'globalPrivacyControl',
      {configurable: true, get() { m.gpcRead = true; return true; }});
  const sel = %(selector)s;
  const start = performance.now();
  const shown = (el) => {
    const r = el.getBoundingClientRect();
    if (!(r.width * r.height)) return false;
    for (let e = el; e; e = e.parentElement) {
      const s = getComputedStyle(e);
      if (s.display === 'none' || s.visibility === 'hidden' || parseFloat(s.opacity) === 0) return false;
    }
    return true;
  };
  let pending = false;
  const frame = () => {
    pending = false;
    const el = document.querySelector(sel);
    if (el && shown(el)) {
      m.seen = performance.now();
      observer.disconnect();
    } else if (el && performance.now() - start < 10000) {
      pending = true;
      requestAnimationFrame(frame);
    }
  };
  const observer = new MutationObserver(() => {
    if (!pending && m.seen === null && document.querySelector(sel)) {
      pending = true;
      requestAnimationFrame(frame);
    }
  });
  observer.observe(document, {childList: true, subtree: true, attributes: true});
})();"""

RESULTS = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const fcp = performance.getEntriesByName('first-contentful-paint')[0];
  return {dcl: nav.domContentLoadedEventStart, fcp: fcp ? fcp.startTime : null,
          seen: __bench.seen, gpcRead: __bench.gpcRead};
}"""

# hideFromBots: false, or it hides from navigator.webdriver (that is, from every automated test).
VANILLA_CONFIG = """CookieConsent.run({
  hideFromBots: false,
  categories: {necessary: {enabled: true, readOnly: true}, analytics: {}, ads: {}},
  language: {default: 'en', translations: {en: {
    consentModal: {title: 'Your privacy choices',
      description: 'We use cookies for the purposes below. Essential ones keep the site working; the others need your consent.',
      acceptAllBtn: 'Accept all', acceptNecessaryBtn: 'Reject all', showPreferencesBtn: 'Preferences'},
    preferencesModal: {title: 'Preferences', acceptAllBtn: 'Accept all', acceptNecessaryBtn: 'Reject all',
      savePreferencesBtn: 'Save', closeIconLabel: 'Close', sections: [
        {title: 'Strictly necessary', description: 'Sign-in, basket and security.', linkedCategory: 'necessary'},
        {title: 'Analytics', description: 'Counts visits so we can improve the shop.', linkedCategory: 'analytics'},
        {title: 'Personalised ads', description: 'Ads that match your interests.', linkedCategory: 'ads'}]}}}}
});"""

KLARO_CONFIG = """var klaroConfig = {
  version: 1, elementID: 'klaro', storageMethod: 'cookie', cookieName: 'klaro', default: false,
  mustConsent: false, acceptAll: true, hideDeclineAll: false, lang: 'en',
  translations: {en: {consentNotice: {description: 'We use cookies for the purposes below. Essential ones keep the site working; the others need your consent.'},
    purposes: {analytics: 'Analytics', ads: 'Personalised ads'}}},
  services: [{name: 'analytics', title: 'Analytics', purposes: ['analytics']},
             {name: 'ads', title: 'Personalised ads', purposes: ['ads']}]
};"""

OSANO_CONFIG = """window.addEventListener('load', function () {
  window.cookieconsent.initialise({type: 'opt-in', content: {
    message: 'We use cookies for the purposes below. Essential ones keep the site working; the others need your consent.',
    allow: 'Accept all', deny: 'Reject all', link: 'Privacy policy', href: 'https://tea.example/privacy'}});
});"""


def variants(api: str, pk: str) -> dict[str, dict]:
    """name -> page head, banner selector, consent check, the library's files (JS + CSS) and
    everything the page loads for the banner, its configuration included."""
    return {
        "baseline (no banner)": {"head": "", "selector": None, "decided": None, "lib": [], "config": []},
        "ours, inlined, defer": {
            "head": f'<script src="/consent-inline.js" data-key="{pk}" data-api="{api}" defer></script>',
            "selector": "#consent-sdk section", "decided": "ConsentSDK.has('analytics')",
            "lib": ["consent.js"], "config": ["consent-inline.js"]},
        "ours, inlined, async": {
            "head": f'<script src="/consent-inline.js" data-key="{pk}" data-api="{api}" async></script>',
            "selector": "#consent-sdk section", "decided": "ConsentSDK.has('analytics')",
            "lib": ["consent.js"], "config": ["consent-inline.js"]},
        "ours, config request": {
            "head": f'<script src="/consent.js" data-key="{pk}" data-api="{api}" async></script>',
            "selector": "#consent-sdk section", "decided": "ConsentSDK.has('analytics')",
            "lib": ["consent.js"], "config": ["consent.js", "config.json"]},
        "vanilla-cookieconsent": {
            "head": '<link rel="stylesheet" href="/cookieconsent.css">'
                    '<script defer src="/cookieconsent.umd.js"></script>'
                    '<script defer src="/vanilla-config.js"></script>',
            "selector": "#cc-main .cm", "decided": "CookieConsent.acceptedCategory('analytics')",
            "lib": ["cookieconsent.umd.js", "cookieconsent.css"],
            "config": ["cookieconsent.umd.js", "cookieconsent.css", "vanilla-config.js"]},
        "klaro": {
            "head": '<script src="/klaro-config.js"></script><script defer src="/klaro.js"></script>',
            "selector": ".klaro .cookie-notice", "decided": "!!klaro.getManager().getConsent('analytics')",
            "lib": ["klaro.js"], "config": ["klaro.js", "klaro-config.js"]},
        "cookieconsent (Osano)": {
            "head": '<link rel="stylesheet" href="/cookieconsent.min.css">'
                    '<script src="/cookieconsent.min.js"></script><script src="/osano-config.js"></script>',
            "selector": ".cc-window", "decided": "document.cookie.includes('cookieconsent_status=allow')",
            "lib": ["cookieconsent.min.js", "cookieconsent.min.css"],
            "config": ["cookieconsent.min.js", "cookieconsent.min.css", "osano-config.js"]},
    }


def install_peers(tmp: Path, pages: Path) -> dict[str, str]:
    """npm-installs the peers into tmp and copies the files they ship next to the pages."""
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm is missing")
    specs = [f"{name}@{version}" for name, version in PEERS.items()]
    subprocess.run([npm, "install", "--no-audit", "--no-fund", "--silent", "--prefix", str(tmp), *specs],
                   check=True, timeout=300, stdout=subprocess.DEVNULL)
    mods = tmp / "node_modules"
    for src in ["vanilla-cookieconsent/dist/cookieconsent.umd.js", "vanilla-cookieconsent/dist/cookieconsent.css",
                "klaro/dist/klaro.js", "cookieconsent/build/cookieconsent.min.js",
                "cookieconsent/build/cookieconsent.min.css"]:
        shutil.copy(mods / src, pages / Path(src).name)
    (pages / "vanilla-config.js").write_text(VANILLA_CONFIG)
    (pages / "klaro-config.js").write_text(KLARO_CONFIG)
    (pages / "osano-config.js").write_text(OSANO_CONFIG)
    return {name: json.loads((mods / name / "package.json").read_text())["version"] for name in PEERS}


def gzip_size(path: Path) -> int:
    return len(gzip.compress(path.read_bytes(), compresslevel=9))


def throttle(cdp, mobile: bool) -> None:
    # Desktop: CPU time of the page's thread (threadTicks), robust to other processes on the
    # machine. Mobile: wall time (timeTicks), since CPU throttling works by pausing the thread.
    cdp.send("Performance.enable", {"timeDomain": "timeTicks" if mobile else "threadTicks"})
    if mobile:
        cdp.send("Emulation.setCPUThrottlingRate", {"rate": 4})
        cdp.send("Network.enable")
        cdp.send("Network.emulateNetworkConditions", {
            "offline": False, "latency": 150, "downloadThroughput": 1.6 * 1024 * 1024 / 8,
            "uploadThroughput": 750 * 1024 / 8})


def load_once(browser, url: str, v: dict, mobile: bool) -> dict:
    viewport = {"width": 390, "height": 844} if mobile else {"width": 1280, "height": 800}
    context = browser.new_context(viewport=viewport)
    try:
        context.add_init_script(PROBE % {"gpc": "false", "selector": json.dumps(v["selector"] or "#never")})
        page = context.new_page()
        cdp = context.new_cdp_session(page)
        throttle(cdp, mobile)
        page.goto(url, wait_until="load", timeout=30000)
        if v["selector"]:
            page.wait_for_function("window.__bench.seen !== null", timeout=15000)
        page.wait_for_timeout(300)
        result = page.evaluate(RESULTS)
        metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
        result["script"] = metrics.get("ScriptDuration", 0.0) * 1000
        return result
    finally:
        context.close()


def keyboard_and_gpc(browser, url: str, v: dict) -> dict:
    """Tab to an accept control, press Enter: is consent recorded? Did the page read GPC?"""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        context.add_init_script(PROBE % {"gpc": "true", "selector": json.dumps(v["selector"] or "#never")})
        page = context.new_page()
        page.goto(url, wait_until="load")
        if v["selector"] is None:
            return {"keyboard": None, "gpc": page.evaluate("__bench.gpcRead"), "path": []}
        page.wait_for_function("window.__bench.seen !== null", timeout=15000)
        path, accepted = [], False
        for _ in range(40):
            page.keyboard.press("Tab")
            label = page.evaluate("""() => { const e = document.activeElement;
                return e && e !== document.body ? (e.innerText || e.value || e.getAttribute('aria-label') || e.tagName)
                .trim().replace(/\\s+/g, ' ').slice(0, 30) : ''; }""")
            path.append(label)
            if label.lower() in ACCEPT:
                page.keyboard.press("Enter")
                page.wait_for_timeout(400)
                try:
                    accepted = bool(page.evaluate(v["decided"]))
                except Exception:
                    accepted = False
                break
        return {"keyboard": accepted, "gpc": page.evaluate("__bench.gpcRead"), "path": path}
    finally:
        context.close()


def median(values):
    values = [x for x in values if x is not None]
    return statistics.median(values) if values else None


def fmt(x, digits=0, signed=False):
    if x is None:
        return "-"
    return f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"


def ratio(x, base):
    return "-" if x is None or not base else f"x{x / base:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="loads per variant and profile (median)")
    parser.add_argument("--deadline", type=float, default=300, help="stop measuring after this many seconds")
    parser.add_argument("--json", type=Path, help="also write the raw medians here")
    args = parser.parse_args()
    started = time.monotonic()

    with live.workdir("snippet-bench-") as tmp:
        pages = tmp / "pages"
        pages.mkdir()
        (tmp / "server").mkdir()
        print("installing peers from npm ...", file=sys.stderr)
        versions = install_peers(tmp / "peers", pages)
        with live.api_server(tmp / "server") as api, live.page_server(pages) as origin, \
                live.chromium() as browser:
            pk = live.make_tenant(api, origin).publishable
            (pages / "consent-inline.js").write_bytes(live.fetch(api, f"/sdk/consent.js?key={pk}"))
            (pages / "consent.js").write_bytes(live.fetch(api, "/sdk/consent.js"))
            for part in ("panel", "app"):  # loaded on demand from beside consent.js
                (pages / f"consent-{part}.js").write_bytes(live.fetch(api, f"/sdk/consent-{part}.js"))
            config = urllib_get(api + "/v1/public/config?locale=en", pk, origin)
            (pages / "config.json").write_bytes(config)
            vs = variants(api, pk)
            urls = {}
            for i, (name, v) in enumerate(vs.items()):
                (pages / f"v{i}.html").write_text(PAGE.format(head=v["head"], body=""), encoding="utf-8")
                urls[name] = f"{origin}/v{i}.html"

            samples = {(p, n): [] for p in ("desktop", "mobile") for n in vs}
            browser.new_context().close()  # warm the browser process
            stopped_early = False
            for profile in ("desktop", "mobile"):
                for run in range(args.runs + 1):  # run 0 warms caches of the server side, discarded
                    for name, v in vs.items():
                        if time.monotonic() - started > args.deadline:
                            stopped_early = True
                            break
                        result = load_once(browser, urls[name], v, profile == "mobile")
                        if run:
                            samples[(profile, name)].append(result)
            checks = {name: keyboard_and_gpc(browser, urls[name], v) for name, v in vs.items()}

        sizes = {name: sum(gzip_size(pages / f) for f in v["lib"]) for name, v in vs.items()}
        loaded = {name: sum(gzip_size(pages / f) for f in v["config"]) for name, v in vs.items()}
        report(vs, samples, checks, sizes, loaded, versions, args, time.monotonic() - started, stopped_early)
    return 0


def urllib_get(url: str, pk: str, origin: str) -> bytes:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {pk}", "Origin": origin})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read()


def report(vs, samples, checks, sizes, loaded, versions, args, elapsed, stopped_early) -> None:
    ours = sizes["ours, inlined, async"]
    out = {}
    print(f"\nSnippet bench: headless {live.CHROMIUM}, {args.runs} loads per cell (median), "
          f"peers {', '.join(f'{k} {v}' for k, v in versions.items())}; {elapsed:.0f} s"
          + (" (deadline hit: fewer samples)" if stopped_early else ""))
    for profile in ("desktop", "mobile"):
        base = {k: median([s[k] for s in samples[(profile, "baseline (no banner)")]])
                for k in ("dcl", "fcp", "script")}
        print(f"\n{profile}" + (" (4x CPU, 150 ms RTT, 1.6 Mbps, 390 px)" if profile == "mobile" else
                               " (no throttling, 1280 px)"))
        header = (f"{'variant':24} {'lib gz B':>8} {'vs ours':>7} {'+config':>7} {'DCL ms':>7} {'dDCL':>6} "
                  f"{'DCL->banner':>11} {'FCP ms':>7} {'dFCP':>6} {'FCP/base':>8} {'script ms':>9} "
                  f"{'dscript':>7} {'script/base':>11}")
        print(header)
        print("-" * len(header))
        for name in vs:
            s = samples[(profile, name)]
            dcl, fcp, script = (median([x[k] for x in s]) for k in ("dcl", "fcp", "script"))
            shown = median([x["seen"] - x["dcl"] for x in s if x["seen"] is not None])
            row = {"gzip": sizes[name], "gzip_with_config": loaded[name], "dcl": dcl, "fcp": fcp, "script": script, "dcl_to_banner": shown,
                   "d_dcl": None if dcl is None else dcl - base["dcl"],
                   "d_fcp": None if fcp is None else fcp - base["fcp"],
                   "d_script": None if script is None else script - base["script"]}
            out[f"{profile}/{name}"] = row
            print(f"{name:24} {sizes[name]:>8} {ratio(sizes[name], ours) if sizes[name] else '-':>7} "
                  f"{loaded[name]:>7} "
                  f"{fmt(dcl, 1):>7} {fmt(row['d_dcl'], 1, True):>6} {fmt(shown, 1):>11} {fmt(fcp, 1):>7} "
                  f"{fmt(row['d_fcp'], 1, True):>6} {ratio(fcp, base['fcp']):>8} {fmt(script, 1):>9} "
                  f"{fmt(row['d_script'], 1, True):>7} {ratio(script, base['script']):>11}")
    print(f"\n{'variant':24} {'keyboard accept':>15} {'GPC read':>9}  Tab path to accept")
    for name in vs:
        c = checks[name]
        kb = "-" if c["keyboard"] is None else ("yes" if c["keyboard"] else "no")
        print(f"{name:24} {kb:>15} {'yes' if c['gpc'] else 'no':>9}  {' > '.join(c['path'][:8])}")

    for variant in ("ours, inlined, async", "ours, inlined, defer"):
        d, m = out[f"desktop/{variant}"], out[f"mobile/{variant}"]
        print(f"\nBudgets ({variant}):")
        for label, value, limit in [
            ("gzip bytes of consent.js", sizes[variant], BUDGET["gzip"]),
            ("DCL->banner ms, desktop (one frame)", d["dcl_to_banner"], BUDGET["frame_ms"]),
            ("DCL->banner ms, mobile (drawn <=150)", m["dcl_to_banner"], BUDGET["drawn_ms"]),
            ("FCP delta ms, desktop", d["d_fcp"], BUDGET["fcp_ms"]),
            ("FCP delta ms, mobile", m["d_fcp"], BUDGET["fcp_ms"]),
            ("script ms over baseline, desktop", d["d_script"], BUDGET["script_ms"]),
        ]:
            ok = value is not None and value <= limit
            print(f"  {label:38} {fmt(value, 1):>8} <= {limit:.1f}  {'ok' if ok else 'OVER'}")
    if args.json:
        args.json.write_text(json.dumps({"rows": out, "checks": checks, "versions": versions}, indent=2))


if __name__ == "__main__":
    sys.exit(main())
