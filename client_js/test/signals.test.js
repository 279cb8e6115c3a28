import { test } from 'node:test';
import assert from 'node:assert/strict';
import { consentModeState, gpcEnabled, sendConsentMode } from '../src/signals.js';

const ALL_DENIED = { ad_storage: 'denied', analytics_storage: 'denied', ad_user_data: 'denied', ad_personalization: 'denied' };
const PURPOSES = [
  { key: 'analytics', kind: 'cookie', consent_mode: ['analytics_storage'] },
  { key: 'ads', kind: 'marketing', consent_mode: ['ad_storage', 'ad_user_data', 'ad_personalization', 'not_a_signal'] },
  { key: 'push', kind: 'processing' },
];

test('GPC counts only when the browser says exactly true', () => {
  assert.equal(gpcEnabled({ globalPrivacyControl: true }), true);
  for (const nav of [{}, { globalPrivacyControl: false }, { globalPrivacyControl: 'true' }, null, undefined]) {
    assert.equal(gpcEnabled(nav), false);
  }
});

test('Consent Mode default denies all four signals', () => {
  assert.deepEqual(consentModeState([], {}), ALL_DENIED);
});

test('a signal is granted only through an allowed purpose that lists it', () => {
  assert.deepEqual(consentModeState(PURPOSES, { analytics: true }), { ...ALL_DENIED, analytics_storage: 'granted' });
  assert.deepEqual(consentModeState(PURPOSES, { ads: true, analytics: false }), {
    ad_storage: 'granted', analytics_storage: 'denied', ad_user_data: 'granted', ad_personalization: 'granted',
  });
  assert.deepEqual(consentModeState(PURPOSES, { push: true }), ALL_DENIED);
});

test('every update carries all four signals and nothing else', () => {
  const state = consentModeState(PURPOSES, { ads: true, analytics: true });
  assert.deepEqual(Object.keys(state).sort(), Object.keys(ALL_DENIED).sort());
});

test('sendConsentMode calls gtag when present and is quiet otherwise', () => {
  const calls = [];
  sendConsentMode({ gtag: (...args) => calls.push(args) }, 'default', ALL_DENIED);
  assert.deepEqual(calls, [['consent', 'default', ALL_DENIED]]);
  sendConsentMode({}, 'update', ALL_DENIED);
  sendConsentMode(undefined, 'update', ALL_DENIED);
  sendConsentMode({ gtag: 'not a function' }, 'update', ALL_DENIED);
});
