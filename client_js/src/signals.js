// Signals exchanged with the browser and with tags: Global Privacy Control in,
// Google Consent Mode v2 out.

import { SIGNALS } from './constants.js';

/** True when the browser sends Global Privacy Control. */
export const gpcEnabled = (nav) => !!nav && nav.globalPrivacyControl === true;

/** Consent Mode state: every signal denied unless an allowed purpose lists it. */
export function consentModeState(purposes, allowed) {
  const state = {};
  for (const s of SIGNALS) state[s] = 'denied';
  for (const p of purposes) {
    if (!allowed[p.key]) continue;
    for (const s of p.consent_mode || []) if (s in state) state[s] = 'granted';
  }
  return state;
}

/** Calls `gtag('consent', command, state)` when the page has gtag. */
export function sendConsentMode(win, command, state) {
  if (win && typeof win.gtag === 'function') win.gtag('consent', command, state);
}
