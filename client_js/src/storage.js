// First-party memory of the visitor: an anonymous subject id and the last decision.
//
// Decision cookie value: `1~VERSION~HASH~BITS`
//   1        format of the value
//   VERSION  the latest material policy version in effect when the decision was made, or the
//            current version when no material one was (see materialVersion; cookie-safe charset)
//   HASH     FNV-1a (base 36) of the sorted keys of the choosable purposes then shown
//   BITS     hex digits, bit i = purpose i of those sorted keys was allowed
// It stays far below 100 bytes for any realistic catalog. A HASH that no longer
// matches means the catalog changed, so the stored bits are meaningless: ask again.

import { DECISION_COOKIE, ID_COOKIE, ID_RE, MAX_AGE } from './constants.js';

/** Value of cookie `name` in `doc.cookie`, or ''. */
export function readCookie(doc, name) {
  const part = ('; ' + doc.cookie).split('; ' + name + '=')[1];
  return part ? part.split(';')[0] : '';
}

/** Sets a first-party cookie for the whole site, or for every subdomain of `domain` (e.g. ".example.com"). */
export function writeCookie(doc, name, value, domain) {
  doc.cookie = name + '=' + value + ';path=/;max-age=' + MAX_AGE + ';samesite=lax' +
    (domain ? ';domain=' + domain : '') +
    (doc.location && doc.location.protocol === 'https:' ? ';secure' : '');
}

/** `bytes` random bytes as lowercase hex. */
export function randomHex(bytes, crypto = globalThis.crypto) {
  return Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) => (b + 256).toString(16).slice(1)).join('');
}

/**
 * The visitor's anonymous subject id, created (and stored) on first call. An existing id is
 * not written again (every decision refreshes it): a cookie read that follows a write waits
 * for the browser's cookie store, tens of milliseconds on a busy machine.
 */
export function subjectId(doc, crypto, domain) {
  let id = readCookie(doc, ID_COOKIE);
  if (!ID_RE.test(id)) writeCookie(doc, ID_COOKIE, (id = 'anon-' + randomHex(16, crypto)), domain);
  return id;
}

/** Short stable fingerprint of a list of purpose keys. */
export function hashKeys(keys) {
  let h = 2166136261;
  const s = keys.join(' ');
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return (h >>> 0).toString(36);
}

/** Cookie value for `allowed` ({key: bool}) over the sorted choosable `keys`. */
export function encode(version, keys, allowed) {
  let bits = '';
  for (let i = 0; i < keys.length; i += 4) {
    let d = 0;
    for (let j = 0; j < 4; j++) if (allowed[keys[i + j]]) d |= 1 << j;
    bits += d.toString(16);
  }
  return ['1', version, hashKeys(keys), bits].join('~');
}

/** {version, allowed} from a cookie value, or null when absent, malformed or stale. */
export function decode(value, keys) {
  const [fmt, version, hash, bits = ''] = (value || '').split('~');
  if (fmt !== '1' || !version || hash !== hashKeys(keys) || bits.length !== Math.ceil(keys.length / 4) || /[^0-9a-f]/.test(bits)) return null;
  const allowed = {};
  keys.forEach((k, i) => { allowed[k] = !!(parseInt(bits[i >> 2], 16) & (1 << (i & 3))); });
  return { version, allowed };
}

/**
 * The latest material policy version in effect for config `policy` ('' if none). A decision
 * remembered under another version predates a material change and must be asked again, also
 * when non-material versions followed that change. Servers without `material_version` give
 * the current version when it is material.
 */
export const materialVersion = (policy) =>
  (policy.material_version !== undefined ? policy.material_version : policy.material && policy.version) || '';

/** The remembered decision for these sorted choosable keys, or null. */
export function loadDecision(doc, keys) {
  return decode(readCookie(doc, DECISION_COOKIE), keys);
}

/** Remembers a decision, and refreshes the subject id's lifetime with it. */
export function saveDecision(doc, version, keys, allowed, id, domain) {
  writeCookie(doc, DECISION_COOKIE, encode(version, keys, allowed), domain);
  writeCookie(doc, ID_COOKIE, id, domain);
}
