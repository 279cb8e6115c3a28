// Entry point: reads the embed attributes, wires the modules, exposes a frozen
// window.ConsentSDK. Without a DOM (or loaded twice) it does nothing. What not every page
// needs loads on demand, from next to this script and with its nonce: the preferences panel
// (consent-panel.js) and app mode for a signed-in account (consent-app.js).

/* global __PART_VERSIONS__ */
import { ANDROID_BRIDGE, CHANGE_EVENT, CHOOSABLE_KINDS, DECISION_COOKIE, INLINE_CONFIG, IOS_HANDLER, OPEN_ATTR, PART_HOOK } from './constants.js';
import { createApi } from './api.js';
import { decode, materialVersion, randomHex, readCookie, saveDecision, subjectId } from './storage.js';
import { consentModeState, gpcEnabled, sendConsentMode } from './signals.js';
import { pickLocale, texts } from './i18n.js';
import { unblock } from './blocker.js';
import { createUI } from './banner.js';

/** Calls `cb(value)`; what it throws surfaces later, without breaking the caller. */
const notify = (cb, value) => {
  try {
    cb(value);
  } catch (e) {
    setTimeout(() => { throw e; });
  }
};

/** The `sub` claim of a JWT, read without verifying (the server verifies), or undefined. */
function tokenSubject(token) {
  try {
    return JSON.parse(atob(token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/'))).sub;
  } catch (e) {
    return undefined;
  }
}

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
  // Under a CSP sent as a header, browsers hide the nonce attribute: the property keeps it.
  const nonce = (script && script.nonce) || data('nonce');
  const domain = data('cookie-domain');
  const nav = win.navigator || {};
  const inline = win[INLINE_CONFIG];
  const locale = pickLocale([data('locale'), doc.documentElement.lang, ...(nav.languages || [nav.language])]);
  const t = texts(locale);
  const gpc = gpcEnabled(nav);
  // Both cookies are read before anything is written (a read after a write is slow).
  const remembered = readCookie(doc, DECISION_COOKIE);
  const token = data('subject-token');
  const fetchFn = (...args) => win.fetch(...args);
  const api = createApi(base, key, fetchFn);
  const listeners = new Set();
  const parts = {};

  let id = '';
  let account = null; // app mode: a Promise of the account session (see app.js)
  let config = null;
  let choosable = []; // purposes decided on in the banner
  let keys = []; // their keys sorted: the bit order of the cookie
  let allowed = {}; // purpose key -> bool, essential purposes included
  let decided = false; // a decision valid under the current policy exists
  let mark = ''; // version remembered with a decision (see materialVersion)
  let ui = null;
  let options = null; // what ui was built with
  let panelWanted = null;

  const has = (purpose) => allowed[purpose] === true;
  const snapshot = () => ({ allowed: { ...allowed } });

  /** Loads part `name` once, from next to this script, with its nonce; resolves with its export. */
  function load(name) {
    return parts[name] || (parts[name] = new Promise((resolve, reject) => {
      let arrived = false;
      (win[PART_HOOK] = win[PART_HOOK] || {})[name] = (part) => {
        arrived = true;
        resolve(part);
      };
      const s = doc.createElement('script');
      s.src = new URL('consent-' + name + '.js?v=' + __PART_VERSIONS__[name], src || base + '/sdk/').href;
      if (nonce) s.nonce = nonce;
      // A part hands itself over as it runs, before its load event; without it, ask again next time.
      s.onload = s.onerror = () => {
        if (arrived) return;
        delete parts[name];
        reject(new Error('consent: ' + s.src + ' did not load'));
      };
      doc.head.append(s);
    }));
  }

  function changed() {
    sendConsentMode(win, 'update', consentModeState(config.purposes, allowed));
    unblock(doc, has);
    listeners.forEach((cb) => notify(cb, snapshot()));
    // The page and, in an app's WebView, the app hear of every change.
    const detail = { ...snapshot(), subject_id: id };
    doc.dispatchEvent(new CustomEvent(CHANGE_EVENT, { bubbles: true, detail }));
    const ios = win.webkit && win.webkit.messageHandlers && win.webkit.messageHandlers[IOS_HANDLER];
    const android = win[ANDROID_BRIDGE];
    if (ios) notify((d) => ios.postMessage(d), detail);
    if (android) notify((d) => android.postMessage(JSON.stringify(d)), detail);
  }

  /** Applies, remembers and records `choices` for `purposes`; resolves with the server's answer. */
  function decide(choices, purposes) {
    for (const p of purposes) allowed[p.key] = !!choices[p.key];
    decided = true;
    if (!account) saveDecision(doc, mark, keys, allowed, id, domain);
    if (ui) ui.hide();
    changed();
    if (!purposes.length) return Promise.resolve(null);
    const decisions = purposes.map((p) => ({ purpose: p.key, granted: !!choices[p.key] }));
    const idempotencyKey = randomHex(16, win.crypto);
    return account
      ? account.then((a) => a.record(decisions, config.policy.version, locale, idempotencyKey))
      : api.consents({ subject_id: id, decisions, policy_version: config.policy.version, locale, gpc }, idempotencyKey);
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

  /** The panel part, once loaded, opens unless the interface changed meanwhile. */
  function openPanel(view, from) {
    const at = view.now();
    load('panel').then((show) => view.now() === at && show(view, from), () => {});
  }

  function init(cfg) {
    config = cfg;
    const purposes = (cfg.purposes = cfg.purposes || []);
    const policy = (cfg.policy = cfg.policy || {});
    choosable = purposes.filter((p) => !p.essential && CHOOSABLE_KINDS.includes(p.kind));
    keys = choosable.map((p) => p.key).sort();
    for (const p of purposes) allowed[p.key] = !!p.essential;
    const material = materialVersion(policy);
    mark = material || policy.version;
    const stored = !account && decode(remembered, keys);
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
    options = {
      t, locale, gpc, updated, titles, nonce,
      policyUrl: policy.url,
      purposes: purposes.filter((p) => p.essential).concat(choosable), // always-on ones first
      vendors: cfg.vendors,
      decided: () => decided,
      choices: () => allowed,
      onAction,
      panel: openPanel,
    };
  }

  /** App mode: the account's state decides what is allowed and whether the banner shows. */
  function readAccount() {
    return account.then((a) => a.read(keys)).then((state) => {
      Object.assign(allowed, state.allowed);
      decided = state.decided;
      options.updated = state.updated;
      changed();
    }, (e) => {
      // No account after all (a bad or expired token): the page carries on anonymously.
      account = null;
      id = subjectId(doc, win.crypto, domain);
      throw e;
    });
  }

  function mountUI() {
    ui = createUI(options);
    unblock(doc, has);
    if (panelWanted) open(panelWanted === true ? null : panelWanted);
    else if (!decided && choosable.length) ui.banner();
  }

  /** Acts for the account of a subject token from now on (app mode); false for a malformed token. */
  function connectAccount(subjectToken) {
    const sub = tokenSubject(subjectToken);
    if (typeof sub !== 'string') return false;
    id = sub;
    account = load('app').then((connect) => connect(base, sub, subjectToken, fetchFn));
    return true;
  }

  if (!token || !connectAccount(token)) id = subjectId(doc, win.crypto, domain);
  const warn = (e) => win.console && win.console.warn('consent:', e);
  // Inlined by the server as {en: config, 'zh-CN': config} (or one config): no request.
  const ready = (inline ? Promise.resolve(inline[locale] || inline.en || inline) : api.config(locale))
    .then(init)
    .then(() => account && readAccount().catch(warn))
    .then(() => (doc.readyState === 'loading'
      ? new Promise((r) => doc.addEventListener('DOMContentLoaded', r))
      : null))
    .then(mountUI)
    .catch((e) => {
      warn(e);
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
    /** Refuses every purpose the banner shows; resolves once the server recorded it. */
    withdrawAll: () => ready.then(() => decide({}, choosable)),
    /** Calls `callback({allowed})` now if decided and after every change; returns an unsubscribe function. */
    onChange(callback) {
      listeners.add(callback);
      if (decided) Promise.resolve().then(() => listeners.has(callback) && notify(callback, snapshot()));
      return () => listeners.delete(callback);
    },
    /** The subject decisions are recorded under: the anonymous `anon-...` id, or the signed-in account's. */
    subjectId: () => id,
    /** Acts for the account of a subject token (app mode); resolves once its state is applied. */
    identify(subjectToken) {
      if (!connectAccount(subjectToken)) return Promise.reject(new Error('consent: not a subject token'));
      return ready.then(readAccount).then(() => {
        if (decided) ui.hide();
        else if (choosable.length) ui.banner();
      });
    },
  });
  win.ConsentSDK = sdk;
  return sdk;
}

start(typeof window === 'undefined' ? undefined : window);
