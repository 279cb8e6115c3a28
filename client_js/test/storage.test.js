import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decode, encode, hashKeys, loadDecision, materialVersion, randomHex, readCookie, saveDecision, subjectId } from '../src/storage.js';
import { DECISION_COOKIE, ID_COOKIE } from '../src/constants.js';

/** A document.cookie look-alike: reads "a=1; b=2", writes one "name=value;attrs" at a time. */
function cookieJar(protocol = 'https:') {
  const jar = new Map();
  const writes = [];
  return {
    location: { protocol },
    writes,
    get cookie() {
      return [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    },
    set cookie(line) {
      writes.push(line);
      const [pair] = line.split(';');
      const i = pair.indexOf('=');
      jar.set(pair.slice(0, i), pair.slice(i + 1));
    },
  };
}

const KEYS = ['ads', 'analytics', 'marketing_email', 'personalisation', 'sharing'];

test('a decision round-trips through the cookie value', () => {
  const allowed = { ads: false, analytics: true, marketing_email: false, personalisation: true, sharing: true };
  const value = encode('2026-01', KEYS, allowed);
  assert.deepEqual(decode(value, KEYS), { version: '2026-01', allowed });
});

test('the cookie value stays far below 100 bytes', () => {
  const keys = Array.from({ length: 40 }, (_, i) => `purpose_with_a_long_key_${i}`);
  const value = encode('2026-11-22.material-update', keys, Object.fromEntries(keys.map((k) => [k, true])));
  assert.ok(DECISION_COOKIE.length + 1 + value.length <= 100, value);
});

test('a changed purpose catalog invalidates the stored decision', () => {
  const value = encode('v1', KEYS, { ads: true });
  assert.equal(decode(value, [...KEYS, 'new_purpose'].sort()), null);
  assert.equal(decode(value, KEYS.slice(1)), null);
});

test('malformed or foreign values decode to null', () => {
  for (const v of ['', 'yes', '2~v1~x~0', `1~~${hashKeys(KEYS)}~00`, `1~v1~${hashKeys(KEYS)}~zz`, `1~v1~${hashKeys(KEYS)}~0`]) {
    assert.equal(decode(v, KEYS), null, v);
  }
});

test('no choosable purposes still encode a decision', () => {
  assert.deepEqual(decode(encode('v1', [], {}), []), { version: 'v1', allowed: {} });
});

test('hashKeys depends on every key and on order', () => {
  assert.notEqual(hashKeys(['a', 'b']), hashKeys(['b', 'a']));
  assert.notEqual(hashKeys(['a', 'b']), hashKeys(['a', 'bb']));
  assert.equal(hashKeys(['a', 'b']), hashKeys(['a', 'b']));
});

test('readCookie finds a cookie by exact name only', () => {
  const doc = { cookie: 'xconsent=1; consent=2; consent_sid=anon-3' };
  assert.equal(readCookie(doc, 'consent'), '2');
  assert.equal(readCookie(doc, 'consent_sid'), 'anon-3');
  assert.equal(readCookie(doc, 'missing'), '');
});

test('subjectId is created once, starts with anon- and is kept', () => {
  const doc = cookieJar();
  const id = subjectId(doc);
  assert.match(id, /^anon-[0-9a-f]{32}$/);
  assert.equal(subjectId(doc), id);
  assert.equal(readCookie(doc, ID_COOKIE), id);
});

test('subjectId replaces a value the server would refuse', () => {
  const doc = cookieJar();
  doc.cookie = `${ID_COOKIE}=user-42`;
  assert.match(subjectId(doc), /^anon-/);
});

test('cookies are first-party, site-wide, lax, and secure on https only', () => {
  const https = cookieJar('https:');
  subjectId(https);
  assert.match(https.writes.at(-1), /;path=\/;max-age=\d+;samesite=lax;secure$/);
  const http = cookieJar('http:');
  subjectId(http);
  assert.doesNotMatch(http.writes.at(-1), /secure/);
  assert.doesNotMatch(http.writes.at(-1), /domain=/);
});

test('saveDecision then loadDecision gives the decision back', () => {
  const doc = cookieJar();
  saveDecision(doc, 'v2', KEYS, { sharing: true }, 'anon-1');
  const back = loadDecision(doc, KEYS);
  assert.equal(back.version, 'v2');
  assert.equal(back.allowed.sharing, true);
  assert.equal(back.allowed.ads, false);
  assert.equal(readCookie(doc, ID_COOKIE), 'anon-1');
});

test('randomHex gives the requested number of random bytes', () => {
  assert.match(randomHex(16), /^[0-9a-f]{32}$/);
  assert.notEqual(randomHex(16), randomHex(16));
  const fixed = { getRandomValues: (a) => a.fill(10) };
  assert.equal(randomHex(2, fixed), '0a0a');
});

test('decisions are remembered against the latest material policy in effect', () => {
  // v1 decided, then material v2, then non-material v3: the v1 decision is stale, a v2 one is not.
  assert.equal(materialVersion({ version: '2026-03', material: false, material_version: '2026-02' }), '2026-02');
  assert.equal(materialVersion({ version: '2026-01', material: false, material_version: null }), '');
  // Servers that do not send material_version: only a material current policy counts.
  assert.equal(materialVersion({ version: '2026-02', material: true }), '2026-02');
  assert.equal(materialVersion({ version: '2026-03', material: false }), '');
});

test('an existing subject id is read, not written again', () => {
  const doc = cookieJar();
  const id = subjectId(doc);
  const writes = doc.writes.length;
  assert.equal(subjectId(doc), id);
  assert.equal(doc.writes.length, writes);
});

test('a cookie domain shares both cookies with every subdomain', () => {
  const doc = cookieJar('https:');
  const id = subjectId(doc, undefined, '.example.com');
  assert.match(doc.writes.at(-1), /;samesite=lax;domain=\.example\.com;secure$/);
  saveDecision(doc, 'v1', KEYS, { ads: true }, id, '.example.com');
  assert.equal(doc.writes.length, 3);
  assert.ok(doc.writes.every((w) => w.includes(';domain=.example.com')), doc.writes);
});
