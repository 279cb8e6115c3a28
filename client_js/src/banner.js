// The banner (first layer), and the frame the preferences panel (second layer, panel.js,
// loaded on demand) mounts into. Only one layer is in the DOM at a time, so every
// data-consent-action exists once on the page. Light DOM, inserted first in <body> (first in
// Tab order), fixed-positioned.

import { ACTION_ATTR, ROOT_ID } from './constants.js';
import css from './banner.css';

const safeUrl = (u) => /^https?:\/\//i.test(u || '');

/** Element with attributes (null/false skipped, true as empty) and children (strings become text). */
export function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const k in attrs) {
    const v = attrs[k];
    if (v != null && v !== false) e.setAttribute(k, v === true ? '' : v);
  }
  e.append(...kids.flat(2).filter(Boolean));
  return e;
}

/**
 * Builds the interface on demand. `o`: {t (texts), locale, nonce, policyUrl, purposes (listed
 * in the panel), vendors, titles ({key: title}), gpc, updated, decided() (a valid decision
 * exists), choices() (switch positions), onAction(action, switches), panel(ui, from) (opens
 * the preferences panel)}.
 */
export function createUI(o) {
  const { t } = o;
  let root = null;
  let layer = null;
  let back = null; // where focus returns when the layer goes
  let generation = 0; // bumped by every mount and hide: a late panel knows it is too late

  /** Shows `node` as the only layer; `from` gets focus back when it goes. */
  function mount(node, from) {
    generation++;
    if (!root) {
      root = el('div', { id: ROOT_ID, lang: o.locale }, el('style', { nonce: o.nonce }, css));
      root.addEventListener('click', onClick);
      document.body.prepend(root);
    }
    if (layer) layer.remove();
    root.append((layer = node));
    back = from;
    return node;
  }

  const link = (url, text) => safeUrl(url) && el('a', { href: url, target: '_blank', rel: 'noopener' }, text);

  // Chinese sets no space after a full stop.
  const intro = (text) => el('p', {}, text, o.locale === 'en' && ' ', link(o.policyUrl, t.policy));

  // Why the visitor is asked now; once decided, the panel only shows the choices.
  const notes = () => !o.decided() && [o.updated && el('p', {}, t.updated), o.gpc && el('p', {}, t.gpc)];

  const buttons = (actions, texts = t) => el('nav', {}, actions.map((a) => el('button', {
    type: 'button',
    class: a === 'preferences' || a === 'save' ? 'consent-secondary' : null,
    [ACTION_ATTR]: a,
  }, texts[a])));

  const banner = () => mount(el('section', { 'aria-labelledby': 'consent-sdk-title' },
    el('h2', { id: 'consent-sdk-title' }, t.title),
    intro(t.intro),
    notes(),
    buttons(['accept-all', 'reject-all', 'preferences'])));

  /** Removes everything and gives focus back to whoever opened the layer. */
  function hide() {
    const to = back;
    generation++;
    if (root) root.remove();
    root = layer = back = null;
    if (to && to.isConnected) to.focus();
  }

  // What the panel part builds with.
  const ui = { o, el, link, intro, notes, buttons, mount, banner, hide, now: () => generation };

  function panel(from) {
    o.panel(ui, from || document.activeElement);
  }

  function onClick(e) {
    const b = e.target.closest('button');
    const action = b && b.getAttribute(ACTION_ATTR);
    if (action === 'preferences') panel(b);
    else if (action) {
      const switches = {};
      for (const s of layer.querySelectorAll('[role=switch]')) switches[s.name] = s.checked;
      o.onAction(action, switches);
    }
  }

  return { banner, panel, hide };
}
