// The preferences panel, a part the bundle loads (as consent-panel.js, with its own script's
// nonce) the first time a visitor opens it: most page views never do. It mounts as the one
// layer of the interface banner.js built, as a modal dialog: focus moves in and back out,
// Tab is trapped, Esc and the backdrop close it.

import { ACTION_ATTR, PART_HOOK } from './constants.js';
import { PANEL_TEXTS } from './i18n.js';
import css from './panel.css';

const FOCUSABLE = 'a[href],button,input,summary';

/** Opens the panel in `ui` (what createUI shares); `from` gets focus back when it closes. */
export function openPanel(ui, from) {
  const { o, el } = ui;
  const t = { ...o.t, ...(PANEL_TEXTS[o.locale] || PANEL_TEXTS.en) };
  const choices = o.choices();
  const pair = (label, value) => value && [el('dt', {}, label), el('dd', {}, value)];

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
    ui.link(v.privacy_policy_url, t.policy)));

  const back = ui.mount(el('div', { class: 'consent-back' },
    el('style', { nonce: o.nonce }, css),
    el('div', { role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': 'consent-sdk-ptitle' },
      el('button', { type: 'button', class: 'consent-close', 'aria-label': t.close, 'data-consent-close': true }, '\u00d7'),
      el('h2', { id: 'consent-sdk-ptitle' }, t.preferences),
      ui.intro(t.panelIntro),
      ui.notes(),
      el('ul', {}, rows),
      vendors.length && [el('h2', {}, t.vendors), vendors],
      ui.buttons(['reject-all', 'accept-all', 'save'], t))), from);

  const focusables = () => Array.from(back.querySelectorAll(FOCUSABLE)).filter((x) => x.getClientRects().length);

  /** Leaves the panel without deciding: back to the banner while nothing is decided. */
  function close() {
    if (o.decided()) return ui.hide();
    const banner = ui.banner();
    (from && from.isConnected ? from : banner.querySelector('[' + ACTION_ATTR + '=preferences]')).focus();
  }

  back.addEventListener('click', (e) => {
    if (e.target === back || e.target.closest('[data-consent-close]')) close();
  });
  // Modal: Esc closes, Tab and Shift+Tab cycle inside.
  back.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') {
      e.preventDefault();
      close();
    } else if (e.key === 'Tab') {
      const f = focusables();
      const edge = e.shiftKey ? f[0] : f[f.length - 1];
      if (document.activeElement === edge || !back.contains(document.activeElement)) {
        e.preventDefault();
        (e.shiftKey ? f[f.length - 1] : f[0]).focus();
      }
    }
  });
  focusables()[0].focus();
}

const hook = typeof window !== 'undefined' && window[PART_HOOK];
if (hook && hook.panel) hook.panel(openPanel);
