// Runs scripts the page parked as `<script type="text/plain" data-consent="KEY">`
// once KEY is allowed. Inline and `src` scripts run strictly in document order:
// each `src` script is awaited before the next one starts, as the parser would.
// The original type can be given as `data-type` (e.g. "module").

import { BLOCKED_SCRIPTS } from './constants.js';

let queue = Promise.resolve();

/** Copies a parked script into a live one and resolves once it has run (or failed). */
function activate(doc, parked) {
  return new Promise((done) => {
    const s = doc.createElement('script');
    for (const { name, value } of Array.from(parked.attributes)) {
      if (name !== 'type' && name !== 'data-type') s.setAttribute(name, value);
    }
    const type = parked.getAttribute('data-type');
    if (type) s.setAttribute('type', type);
    if (parked.nonce) s.nonce = parked.nonce;
    s.text = parked.text;
    const external = s.hasAttribute('src');
    if (external) {
      s.async = false;
      s.onload = s.onerror = () => done();
    }
    parked.parentNode.replaceChild(s, parked);
    if (!external) done();
  });
}

/**
 * Runs, in document order, every parked script whose purpose `has(key)` allows.
 * Calls are serialised, so overlapping changes never run a script twice.
 */
export function unblock(doc, has) {
  queue = queue.then(() => {
    const ready = Array.from(doc.querySelectorAll(BLOCKED_SCRIPTS)).filter(
      (s) => !s.consentQueued && has(s.getAttribute('data-consent')),
    );
    for (const s of ready) s.consentQueued = true;
    return ready.reduce((p, s) => p.then(() => s.parentNode && activate(doc, s)), Promise.resolve());
  }).catch(() => {});
  return queue;
}
