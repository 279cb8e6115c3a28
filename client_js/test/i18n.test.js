import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PANEL_TEXTS, TEXTS, pickLocale, texts } from '../src/i18n.js';

test('data-locale, then <html lang>, then navigator.languages, then en', () => {
  assert.equal(pickLocale(['zh-CN', 'en', 'en-US']), 'zh-CN');
  assert.equal(pickLocale(['', 'zh', 'en-US']), 'zh-CN');
  assert.equal(pickLocale([null, '', 'en-GB', 'zh-CN']), 'en');
  assert.equal(pickLocale([undefined, undefined, 'zh-TW']), 'zh-CN');
  assert.equal(pickLocale(['', '']), 'en');
  assert.equal(pickLocale([]), 'en');
});

test('every zh* locale maps to zh-CN, case-insensitively', () => {
  for (const l of ['zh', 'zh-CN', 'zh-cn', 'ZH-Hans', 'zh-Hant-TW', 'zh_CN']) assert.equal(pickLocale([l]), 'zh-CN', l);
});

test('an unsupported candidate gives way to the next supported one', () => {
  assert.equal(pickLocale(['fr', 'de-DE', 'zh-CN']), 'zh-CN');
  assert.equal(pickLocale(['ja']), 'en');
});

const all = (locale) => ({ ...TEXTS[locale], ...PANEL_TEXTS[locale] });

test('button labels are the contract ones', () => {
  assert.deepEqual(
    ['accept-all', 'reject-all', 'preferences', 'save'].map((a) => all('en')[a]),
    ['Accept all', 'Reject all', 'Preferences', 'Save'],
  );
  assert.deepEqual(
    ['accept-all', 'reject-all', 'preferences', 'save'].map((a) => all('zh-CN')[a]),
    ['全部接受', '全部拒绝', '偏好设置', '保存'],
  );
});

test('both locales carry the same keys, none empty, and the panel overrides none of the banner\'s', () => {
  for (const table of [TEXTS, PANEL_TEXTS]) {
    assert.deepEqual(Object.keys(table['zh-CN']).sort(), Object.keys(table.en).sort());
    for (const [locale, t] of Object.entries(table)) {
      for (const [k, v] of Object.entries(t)) assert.ok(typeof v === 'string' && v.length > 0, `${locale}.${k}`);
    }
  }
  assert.deepEqual(Object.keys(PANEL_TEXTS.en).filter((k) => k in TEXTS.en), []);
});

test('Chinese texts use Chinese punctuation and no stray ASCII sentence marks', () => {
  for (const [k, v] of Object.entries(all('zh-CN'))) {
    if (k === 'sep') continue;
    assert.match(v, /[\u4e00-\u9fff]/, k);
    assert.doesNotMatch(v, /[,;:!?]|\.(\s|$)/, k);
  }
});

test('texts() falls back to English', () => {
  assert.equal(texts('zh-CN'), TEXTS['zh-CN']);
  assert.equal(texts('fr'), TEXTS.en);
});
