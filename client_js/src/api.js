// The only module that knows the REST URLs. Credentials travel as `Authorization: Bearer`
// (a publishable key, or in app mode the signed-in user's subject token); no cookies are
// sent to the API.

import { RETRY_DELAYS } from './constants.js';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Errors worth another try: no answer at all, timeouts, rate limits, server faults. */
const retryable = (status) => !status || status === 408 || status === 429 || status >= 500;

function fail(res) {
  throw new Error('consent_api HTTP ' + res.status);
}

const root = (base) => base.replace(/\/+$/, '') + '/v1/';

/** GET `url` as JSON; `missing` is the answer to a 404 (else a 404 fails). */
const getJson = (fetchFn, url, auth, missing) =>
  fetchFn(url, { headers: auth, credentials: 'omit' })
    .then((res) => (res.ok ? res.json() : missing && res.status === 404 ? missing : fail(res)));

/**
 * POSTs `body` to `url`. Outlives the page (keepalive) and retries with backoff under one
 * Idempotency-Key, so a retry never records the decision twice.
 */
async function post(fetchFn, wait, delays, url, auth, body, idempotencyKey) {
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
      res = await fetchFn(url, init);
      if (res.ok) return res.json();
    } catch (e) {
      if (attempt >= delays.length) throw e;
    }
    if (res && (!retryable(res.status) || attempt >= delays.length)) fail(res);
    await wait(delays[attempt]);
  }
}

/**
 * Client for `base` (e.g. https://consent.example.com) and publishable `key`.
 * `fetchFn` and `wait` are injectable for tests.
 */
export function createApi(base, key, fetchFn, wait = sleep, delays = RETRY_DELAYS) {
  const url = root(base) + 'public/';
  const auth = { Authorization: 'Bearer ' + key };

  return {
    /** GET the tenant's banner config with texts in `locale`. */
    config: (locale) => getJson(fetchFn, url + 'config?locale=' + encodeURIComponent(locale), auth),

    /** POST decisions `{subject_id, decisions, policy_version, locale, gpc}`. */
    consents: (body, idempotencyKey) => post(fetchFn, wait, delays, url + 'consents', auth, body, idempotencyKey),
  };
}

/**
 * Client for one signed-in subject, `subjectId`, with its subject `token` (app mode):
 * the subject-token endpoints, which answer the tenant's registered origins (CORS).
 */
export function createSubjectApi(base, subjectId, token, fetchFn, wait = sleep, delays = RETRY_DELAYS) {
  const url = root(base) + 'subjects/' + encodeURIComponent(subjectId) + '/consents';
  const auth = { Authorization: 'Bearer ' + token };

  return {
    /** GET the subject's state; an account the server has never seen (404) has decided nothing. */
    state: () => getJson(fetchFn, url, auth, { purposes: {} }),

    /** POST `{decisions, policy_version, source, locale}`. */
    consents: (body, idempotencyKey) => post(fetchFn, wait, delays, url, auth, body, idempotencyKey),
  };
}
