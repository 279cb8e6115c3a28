// Banner (first layer) and preferences panel (second layer). Only one layer is
// in the DOM at a time, so every data-consent-action exists once on the page.
// Light DOM, inserted first in <body> (first in Tab order), fixed-positioned.

import { ACTION_ATTR, ROOT_ID } from './constants.js';
import css from './banner.css';

const FOCUSABLE = 'a[href],button,input,summary';
const safeUrl = (u) => /^https?:\/\//i.test(u || '');

/** Element with attributes (null/false skipped, true as empty) and children (strings become text). */
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const k in attrs) {
    const v = attrs[k];
    if (v != null && v !== false) e.setAttribute(k, v === true ? '' : v);
  }
  e.append(...kids.flat(2).filter(Boolean));
  return e;
}

const link = (url, text) => safeUrl(url) && el('a', { href: url, target: '_blank', rel: 'noopener' }, text);

/**
 * Builds the interface on demand. `o`: {t (texts), locale, nonce, policyUrl,
 * purposes (listed in the panel), vendors, titles ({key: title}), gpc, updated,
 * decided() (a valid decision exists), choices() (switch positions),
 * onAction(action, switches)}.
 */
export function createUI(o) {
  const { t } = o;
  let root = null;
  let layer = null;
  let opener = null;

  const isPanel = () => !!layer && layer.className === 'consent-back';

  function mount(node) {
    if (!root) {
      root = el('div', { id: ROOT_ID, lang: o.locale }, el('style', { nonce: o.nonce }, css));
      root.addEventListener('click', onClick);
      root.addEventListener('keydown', onKey);
      document.body.prepend(root);
    }
    if (layer) layer.remove();
    root.append((layer = node));
  }

  // Chinese sets no space after a full stop.
  const intro = (text) => el('p', {}, text, o.locale === 'en' && ' ', link(o.policyUrl, t.policy));

  // Why the visitor is asked now; once decided, the panel only shows the choices.
  const notes = () => !o.decided() && [o.updated && el('p', {}, t.updated), o.gpc && el('p', {}, t.gpc)];

  const buttons = (actions) => el('nav', {}, actions.map((a) => el('button', {
    type: 'button',
    class: a === 'preferences' || a === 'save' ? 'consent-secondary' : null,
    [ACTION_ATTR]: a,
  }, t[a])));

  const pair = (label, value) => value && [el('dt', {}, label), el('dd', {}, value)];

  function banner() {
    mount(el('section', { 'aria-labelledby': 'consent-sdk-title' },
      el('h2', { id: 'consent-sdk-title' }, t.title),
      intro(t.intro),
      notes(),
      buttons(['accept-all', 'reject-all', 'preferences'])));
  }

  function panel(from) {
    opener = from || document.activeElement;
    const choices = o.choices();
    const rows = o.purposes.map((p, i) => {
      const id = 'consent-sdk-p' + i;
      return el('li', {},
        el('div', {}, p.essential
          ? [el('span', {}, p.title), el('small', {}, t.alwaysOn)]
          : [el('label', { for: id }, p.title),
            el('input', { type: 'checkbox', role: 'switch', id, name: p.key, checked: !!choices[p.key], 'aria-describedby': id + 'd' })]),
        el('small', { id: id + 'd' }, p.description));
    });
    const vendors = (o.vendors || []).map((v) => el('details', {},
      el('summary', {}, v.name),
      el('dl', {},
        pair(t.company, v.company),
        pair(t.data, (v.data_collected || []).join(t.sep)),
        pair(t.purpose, (v.purposes || []).map((k) => o.titles[k] || k).join(t.sep)),
        pair(t.scenario, v.scenario)),
      link(v.privacy_policy_url, t.policy)));

    mount(el('div', { class: 'consent-back' },
      el('div', { role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': 'consent-sdk-ptitle' },
        el('button', { type: 'button', class: 'consent-close', 'aria-label': t.close, 'data-consent-close': true }, '×'),
        el('h2', { id: 'consent-sdk-ptitle' }, t.preferences),
        intro(t.panelIntro),
        notes(),
        el('ul', {}, rows),
        vendors.length && [el('h2', {}, t.vendors), vendors],
        buttons(['reject-all', 'accept-all', 'save']))));
    focusables()[0].focus();
  }

  const focusables = () => Array.from(layer.querySelectorAll(FOCUSABLE)).filter((x) => x.getClientRects().length);

  /** Removes everything and gives focus back to whoever opened the panel. */
  function hide() {
    const back = isPanel() && opener;
    if (root) root.remove();
    root = layer = opener = null;
    if (back && back.isConnected) back.focus();
  }

  /** Leaves the panel without deciding: back to the banner while nothing is decided. */
  function close() {
    if (o.decided()) return hide();
    const back = opener;
    banner();
    (back && back.isConnected ? back : layer.querySelector('[' + ACTION_ATTR + '=preferences]')).focus();
  }

  function onClick(e) {
    if (e.target === layer && isPanel()) return close();
    const b = e.target.closest('button');
    const action = b && b.getAttribute(ACTION_ATTR);
    if (!b) return;
    if (b.hasAttribute('data-consent-close')) close();
    else if (action === 'preferences') panel(b);
    else if (action) {
      const switches = {};
      for (const s of layer.querySelectorAll('[role=switch]')) switches[s.name] = s.checked;
      o.onAction(action, switches);
    }
  }

  // Modal panel: Esc closes it, Tab and Shift+Tab cycle inside it.
  function onKey(e) {
    if (!isPanel()) return;
    if (e.key === 'Escape') {
      e.preventDefault();
      close();
    } else if (e.key === 'Tab') {
      const f = focusables();
      const edge = e.shiftKey ? f[0] : f[f.length - 1];
      if (document.activeElement === edge || !layer.contains(document.activeElement)) {
        e.preventDefault();
        (e.shiftKey ? f[f.length - 1] : f[0]).focus();
      }
    }
  }

  return { banner, panel, hide };
}
