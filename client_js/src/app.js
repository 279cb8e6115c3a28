// App mode, a part the bundle loads (as consent-app.js, with its own script's nonce) only on a
// page that acts for a signed-in account: `data-subject-token`, or ConsentSDK.identify(token)
// from an app's WebView. The account's state comes from the server, so decisions made in the
// app's native settings are the ones the page sees, and the page records under the account.

import { DECIDED, PART_HOOK } from './constants.js';
import { createSubjectApi } from './api.js';

/**
 * An account session for `subjectId` with its subject `token`: `read(keys)` resolves with
 * {allowed: {purpose: bool} for every purpose of the state, decided (every one of `keys`, the
 * purposes the banner shows, is granted, denied or withdrawn), updated (one of them awaits
 * re-consent after a material policy change)}; `record(decisions, policyVersion, locale,
 * idempotencyKey)` records on the server with channel web.
 */
export function connect(base, subjectId, token, fetchFn, wait, delays) {
  const api = createSubjectApi(base, subjectId, token, fetchFn, wait, delays);
  return {
    read: (keys) => api.state().then(({ purposes = {} }) => {
      const allowed = {};
      for (const k in purposes) allowed[k] = purposes[k].allowed === true;
      const status = (k) => (purposes[k] || {}).status;
      return {
        allowed,
        decided: keys.every((k) => DECIDED.includes(status(k))),
        updated: keys.some((k) => status(k) === 'reconsent_required'),
      };
    }),
    record: (decisions, policyVersion, locale, idempotencyKey) => api.consents(
      { decisions, policy_version: policyVersion, source: { channel: 'web' }, locale }, idempotencyKey),
  };
}

const hook = typeof window !== 'undefined' && window[PART_HOOK];
if (hook && hook.app) hook.app(connect);
