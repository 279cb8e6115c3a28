import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '../src/app.js';

const json = (status, body = {}) => ({ ok: status >= 200 && status < 300, status, json: async () => body });
const state = (purposes) => async () => json(200, { subject_id: 'u1', purposes });
const SHOWN = ['ads', 'analytics'];

test('every shown purpose granted, denied or withdrawn: decided', async () => {
  const read = await connect('https://h', 'u1', 't', state({
    ads: { status: 'withdrawn', allowed: false },
    analytics: { status: 'granted', allowed: true },
    location: { status: 'not_asked', allowed: false }, // asked in the app, not by the banner
    account: { status: 'granted', allowed: true },
  })).read(SHOWN);
  assert.deepEqual(read, {
    allowed: { ads: false, analytics: true, location: false, account: true },
    decided: true,
    updated: false,
  });
});

test('a shown purpose not asked, expired or awaiting re-consent: not decided', async () => {
  for (const status of ['not_asked', 'expired', 'reconsent_required']) {
    const read = await connect('https://h', 'u1', 't', state({
      ads: { status: 'denied', allowed: false },
      analytics: { status, allowed: false },
    })).read(SHOWN);
    assert.equal(read.decided, false, status);
    assert.equal(read.updated, status === 'reconsent_required', status);
  }
});

test('an account the server has never seen has decided nothing', async () => {
  const read = await connect('https://h', 'u1', 't', async () => json(404)).read(SHOWN);
  assert.deepEqual(read, { allowed: {}, decided: false, updated: false });
});

test('decisions are recorded for the account, on the web channel', async () => {
  const calls = [];
  const fetch = async (url, init) => {
    calls.push({ url, body: JSON.parse(init.body), key: init.headers['Idempotency-Key'] });
    return json(201, { events: [] });
  };
  await connect('https://h', 'user-7', 't', fetch).record([{ purpose: 'ads', granted: false }], 'v2', 'zh-CN', 'k1');
  assert.deepEqual(calls, [{
    url: 'https://h/v1/subjects/user-7/consents',
    key: 'k1',
    body: { decisions: [{ purpose: 'ads', granted: false }], policy_version: 'v2', source: { channel: 'web' }, locale: 'zh-CN' },
  }]);
});
