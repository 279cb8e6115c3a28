import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import vm from 'node:vm';
import { BUDGET_GZIP, OUT, bundle, gzipSize } from '../build.mjs';

const built = await bundle();

test('the committed consent.js equals a fresh build', () => {
  assert.equal(readFileSync(OUT, 'utf8'), built, 'run `npm run build` in client_js/ and commit the result');
});

test(`the bundle stays within ${BUDGET_GZIP} bytes gzip`, () => {
  const size = gzipSize(built);
  console.log(`consent.js gzip: ${size} bytes`);
  assert.ok(size <= BUDGET_GZIP, `${size} > ${BUDGET_GZIP}`);
});

test('the bundle is one ASCII-only IIFE, safe to serve without a charset', () => {
  assert.match(built, /^\/\*![^*]*\*\/\n\(\(\)=>\{/);
  assert.doesNotMatch(built, /[^\x00-\x7f]/);
  assert.doesNotMatch(built, /\bimport\b|\bexport\b/);
});

test('without a DOM the bundle is a quiet no-op', () => {
  for (const context of [{}, { window: {} }, { window: { document: {} } }]) {
    vm.runInNewContext(built, context);
    assert.equal(context.window && context.window.ConsentSDK, undefined);
  }
});

test('a server-prepended inline config is one statement before the bundle', () => {
  const inlined = `window.__CONSENT_CONFIG__={"en":{}};\n` + built;
  const context = { window: {} };
  vm.runInNewContext(inlined, context);
  assert.deepEqual(Object.keys(context.window.__CONSENT_CONFIG__), ['en']);
});
