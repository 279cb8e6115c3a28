import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import vm from 'node:vm';
import { BUDGET_GZIP, OUT, PARTS, PART_BUDGET_GZIP, buildAll, gzipSize, partPath, partVersion } from '../build.mjs';

const files = await buildAll();
const built = files[OUT];

test('the committed consent.js and its parts equal a fresh build', () => {
  assert.deepEqual(Object.keys(files), [OUT, ...PARTS.map(partPath)]);
  for (const [path, code] of Object.entries(files)) {
    assert.equal(readFileSync(path, 'utf8'), code, `${path} is stale: run \`npm run build\` in client_js/ and commit the result`);
  }
});

test(`the bundle every page loads stays within ${BUDGET_GZIP} bytes gzip`, () => {
  const size = gzipSize(built);
  console.log(`consent.js gzip: ${size} bytes`);
  assert.ok(size <= BUDGET_GZIP, `${size} > ${BUDGET_GZIP}`);
});

test(`each lazily loaded part stays within ${PART_BUDGET_GZIP} bytes gzip`, () => {
  for (const name of PARTS) {
    const size = gzipSize(files[partPath(name)]);
    console.log(`consent-${name}.js gzip: ${size} bytes`);
    assert.ok(size <= PART_BUDGET_GZIP, `${name}: ${size} > ${PART_BUDGET_GZIP}`);
  }
});

test('the bundle asks for each part by a hash of the part it was built with', () => {
  const versions = Object.fromEntries(PARTS.map((name) => [name, partVersion(files[partPath(name)])]));
  assert.ok(built.includes(JSON.stringify(versions).replace(/"(\w+)":/g, '$1:')), versions);
  assert.match(built, /"consent-"\+\w+\+".js\?v="/);
});

test('bundle and parts are ASCII-only IIFEs, safe to serve without a charset', () => {
  for (const code of Object.values(files)) {
    assert.match(code, /^\/\*![^*]*\*\/\n\(\(\)=>\{/);
    assert.doesNotMatch(code, /[^\x00-\x7f]/);
    assert.doesNotMatch(code, /\bimport\b|\bexport\b/);
  }
});

test('without a DOM the bundle is a quiet no-op', () => {
  for (const context of [{}, { window: {} }, { window: { document: {} } }]) {
    vm.runInNewContext(built, context);
    assert.equal(context.window && context.window.ConsentSDK, undefined);
  }
});

test('a part hands itself to the bundle that asked for it, and is quiet otherwise', () => {
  for (const name of PARTS) {
    const got = [];
    const context = { window: { __consentPart: { [name]: (fn) => got.push(fn) } } };
    vm.runInNewContext(files[partPath(name)], context);
    assert.equal(got.length, 1, name);
    assert.equal(typeof got[0], 'function');
    for (const quiet of [{}, { window: {} }, { window: { __consentPart: {} } }]) {
      vm.runInNewContext(files[partPath(name)], quiet);
    }
  }
});

test('a server-prepended inline config is one statement before the bundle', () => {
  const inlined = `window.__CONSENT_CONFIG__={"en":{}};\n` + built;
  const context = { window: {} };
  vm.runInNewContext(inlined, context);
  assert.deepEqual(Object.keys(context.window.__CONSENT_CONFIG__), ['en']);
});
