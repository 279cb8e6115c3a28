// The only module that knows the REST URLs. Publishable keys travel like every
// token, as `Authorization: Bearer pk_...`; no cookies are sent to the API.

import { RETRY_DELAYS } from './constants.js';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Errors worth another try: no answer at all, timeouts, rate limits, server faults. */
const retryable = (status) => !status || status === 408 || status === 429 || status >= 500;

function fail(res) {
  throw new Error('consent_api HTTP ' + res.status);
}

/**
 * Client for `base` (e.g. https://consent.example.com) and publishable `key`.
 * `fetchFn` and `wait` are injectable for tests.
 */
export function createApi(base, key, fetchFn, wait = sleep, delays = RETRY_DELAYS) {
  const url = (path) => base.replace(/\/+$/, '') + '/v1/public/' + path;
  const auth = { Authorization: 'Bearer ' + key };

  return {
    /** GET the tenant's banner config with texts in `locale`. */
    config(locale) {
      return fetchFn(url('config?locale=' + encodeURIComponent(locale)), {
        headers: auth,
        credentials: 'omit',
      }).then((res) => (res.ok ? res.json() : fail(res)));
    },

    /**
     * POST decisions `{subject_id, decisions, policy_version, locale, gpc}`.
     * Outlives the page (keepalive) and retries with backoff under one
     * Idempotency-Key, so a retry never records the decision twice.
     */
    async consents(body, idempotencyKey) {
      const init = {
        method: 'POST',
        headers: { ...auth, 'Content-Type': 'application/json', 'Idempotency-Key': idempotencyKey },
        body: JSON.stringify(body),
        credentials: 'omit',
        keepalive: true,
      };
      for (let attempt = 0; ; attempt++) {
        let res = null;
        try {
          res = await fetchFn(url('consents'), init);
          if (res.ok) return res.json();
        } catch (e) {
          if (attempt >= delays.length) throw e;
        }
        if (res && (!retryable(res.status) || attempt >= delays.length)) fail(res);
        await wait(delays[attempt]);
      }
    },
  };
}
