// Entry point: reads the embed attributes, wires the modules, exposes a frozen
// window.ConsentSDK. Without a DOM (or loaded twice) it does nothing.

import { CHOOSABLE_KINDS, DECISION_COOKIE, INLINE_CONFIG, OPEN_ATTR } from './constants.js';
import { createApi } from './api.js';
import { decode, materialVersion, randomHex, readCookie, saveDecision, subjectId } from './storage.js';
import { consentModeState, gpcEnabled, sendConsentMode } from './signals.js';
import { pickLocale, texts } from './i18n.js';
import { unblock } from './blocker.js';
import { createUI } from './banner.js';

const notify = (cb, value) => {
  try {
    cb(value);
  } catch (e) {
    setTimeout(() => { throw e; });
  }
};

/** Starts the snippet in `win`; returns the public API, or undefined without a DOM. */
export function start(win) {
  const doc = win && win.document;
  if (!doc || !doc.createElement) return undefined;
  if (win.ConsentSDK) return win.ConsentSDK;

  // Consent Mode wants its default before any tag reads consent.
  sendConsentMode(win, 'default', consentModeState([], {}));

  const script = doc.currentScript || doc.querySelector('script[data-key]');
  const data = (name) => (script && script.getAttribute('data-' + name)) || '';
  const src = script && script.src ? new URL(script.src, doc.baseURI) : null;
  const key = data('key') || (src && src.searchParams.get('key')) || '';
  const base = data('api') || (src ? src.origin : win.location.origin);
  const nav = win.navigator || {};
  const inline = win[INLINE_CONFIG];
  const locale = pickLocale([data('locale'), doc.documentElement.lang, ...(nav.languages || [nav.language])]);
  const t = texts(locale);
  const gpc = gpcEnabled(nav);
  // Both cookies are read before anything is written (a read after a write is slow).
  const remembered = readCookie(doc, DECISION_COOKIE);
  const id = subjectId(doc, win.crypto);
  const api = createApi(base, key, (...args) => win.fetch(...args));
  const listeners = new Set();

  let config = null;
  let choosable = []; // purposes decided on in the banner
  let keys = []; // their keys sorted: the bit order of the cookie
  let allowed = {}; // purpose key -> bool, essential purposes included
  let decided = false; // a decision valid under the current policy exists
  let mark = ''; // version remembered with a decision (see materialVersion)
  let ui = null;
  let panelWanted = null;

  const has = (purpose) => allowed[purpose] === true;
  const snapshot = () => ({ allowed: { ...allowed } });

  function changed() {
    sendConsentMode(win, 'update', consentModeState(config.purposes, allowed));
    unblock(doc, has);
    listeners.forEach((cb) => notify(cb, snapshot()));
  }

  /** Applies, remembers and records `choices` for `purposes`; resolves with the server's answer. */
  function decide(choices, purposes) {
    for (const p of purposes) allowed[p.key] = !!choices[p.key];
    decided = true;
    saveDecision(doc, mark, keys, allowed, id);
    if (ui) ui.hide();
    changed();
    if (!purposes.length) return Promise.resolve(null);
    return api.consents({
      subject_id: id,
      decisions: purposes.map((p) => ({ purpose: p.key, granted: !!choices[p.key] })),
      policy_version: config.policy.version,
      locale,
      gpc,
    }, randomHex(16, win.crypto));
  }

  function onAction(action, switches) {
    const all = {};
    for (const p of choosable) all[p.key] = action === 'accept-all' || (action === 'save' && !!switches[p.key]);
    decide(all, choosable).catch(() => {});
  }

  function open(from) {
    if (ui) ui.panel(from);
    else panelWanted = from || true;
  }

  function init(cfg) {
    config = cfg;
    const purposes = (cfg.purposes = cfg.purposes || []);
    const policy = (cfg.policy = cfg.policy || {});
    choosable = purposes.filter((p) => !p.essential && CHOOSABLE_KINDS.includes(p.kind));
    keys = choosable.map((p) => p.key).sort();
    for (const p of purposes) allowed[p.key] = !!p.essential;
    const stored = decode(remembered, keys);
    const material = materialVersion(policy);
    mark = material || policy.version;
    const updated = !!stored && !!material && stored.version !== material;
    // A decision made under an older material policy no longer counts: ask again,
    // with every switch off as on a first visit (GPC needs no more than that).
    if (stored && !updated) {
      decided = true;
      Object.assign(allowed, stored.allowed);
      changed();
    }

    const titles = {};
    for (const p of purposes) titles[p.key] = p.title;
    const mountUI = () => {
      ui = createUI({
        t, locale, gpc, updated, titles,
        nonce: script && script.nonce,
        policyUrl: policy.url,
        purposes: purposes.filter((p) => p.essential).concat(choosable), // always-on ones first
        vendors: cfg.vendors,
        decided: () => decided,
        choices: () => allowed,
        onAction,
      });
      unblock(doc, has);
      if (panelWanted) open(panelWanted === true ? null : panelWanted);
      else if (!decided && choosable.length) ui.banner();
    };
    if (doc.readyState === 'loading') doc.addEventListener('DOMContentLoaded', mountUI);
    else mountUI();
  }

  // Inlined by the server as {en: config, 'zh-CN': config} (or one config): no request.
  const ready = (inline ? Promise.resolve(inline[locale] || inline.en || inline) : api.config(locale))
    .then(init)
    .catch((e) => {
      if (win.console) win.console.warn('consent: no banner config', e);
      throw e;
    });
  ready.catch(() => {});

  doc.addEventListener('click', (e) => {
    const opener = e.target.closest && e.target.closest('[' + OPEN_ATTR + ']');
    if (opener) {
      e.preventDefault();
      open(opener);
    }
  });

  const sdk = Object.freeze({
    /** True when `purpose` is allowed now (essential purposes always are). */
    has,
    /** Opens the preferences panel. */
    show: () => open(null),
    /** Refuses every non-essential purpose; resolves once the server recorded it. */
    withdrawAll: () => ready.then(() => decide({}, config.purposes.filter((p) => !p.essential))),
    /** Calls `callback({allowed})` now if decided and after every change; returns an unsubscribe function. */
    onChange(callback) {
      listeners.add(callback);
      if (decided) Promise.resolve().then(() => listeners.has(callback) && notify(callback, snapshot()));
      return () => listeners.delete(callback);
    },
    /** The visitor's first-party anonymous subject id (`anon-...`). */
    subjectId: () => id,
  });
  win.ConsentSDK = sdk;
  return sdk;
}

start(typeof window === 'undefined' ? undefined : window);
