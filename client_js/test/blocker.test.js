import { test } from 'node:test';
import assert from 'node:assert/strict';
import { unblock } from '../src/blocker.js';

/** Just enough of <script> and document for the blocker: records what "runs" and when. */
class FakeScript {
  constructor(attrs = {}, text = '') {
    this.attrs = new Map(Object.entries(attrs));
    this.text = text;
    this.parentNode = null;
  }
  get attributes() {
    return [...this.attrs].map(([name, value]) => ({ name, value }));
  }
  getAttribute(n) {
    return this.attrs.has(n) ? this.attrs.get(n) : null;
  }
  setAttribute(n, v) {
    this.attrs.set(n, String(v));
  }
  hasAttribute(n) {
    return this.attrs.has(n);
  }
}

function fakeDocument(scripts, loadDelay = 5) {
  const ran = [];
  const parent = {
    replaceChild(live, parked) {
      doc.nodes[doc.nodes.indexOf(parked)] = live;
      parked.parentNode = null;
      live.parentNode = parent;
      if (live.hasAttribute('src')) {
        setTimeout(() => {
          const src = live.getAttribute('src');
          ran.push(src);
          (src.includes('broken') ? live.onerror : live.onload)();
        }, loadDelay);
      } else ran.push(live.text);
    },
  };
  const doc = {
    nodes: scripts,
    ran,
    createElement: () => new FakeScript(),
    querySelectorAll: () => doc.nodes.filter((s) => s.getAttribute('type') === 'text/plain' && s.hasAttribute('data-consent')),
  };
  for (const s of scripts) s.parentNode = parent;
  return doc;
}

const parked = (purpose, text, extra = {}) => new FakeScript({ type: 'text/plain', 'data-consent': purpose, ...extra }, text);

test('allowed scripts run in document order, each src awaited before the next', async () => {
  const doc = fakeDocument([
    parked('analytics', 'inline-1'),
    parked('analytics', '', { src: 'https://cdn/a.js' }),
    parked('ads', 'ads-inline'),
    parked('analytics', 'inline-2'),
  ]);
  await unblock(doc, (p) => p === 'analytics');
  assert.deepEqual(doc.ran, ['inline-1', 'https://cdn/a.js', 'inline-2']);
});

test('scripts of a purpose allowed later run then, and never twice', async () => {
  const doc = fakeDocument([parked('analytics', 'a'), parked('ads', 'b')]);
  const allowed = new Set(['analytics']);
  const has = (p) => allowed.has(p);
  await unblock(doc, has);
  allowed.add('ads');
  await Promise.all([unblock(doc, has), unblock(doc, has)]);
  await unblock(doc, has);
  assert.deepEqual(doc.ran, ['a', 'b']);
});

test('nothing runs while nothing is allowed', async () => {
  const doc = fakeDocument([parked('ads', 'x'), parked('ads', '', { src: 'y.js' })]);
  await unblock(doc, () => false);
  assert.deepEqual(doc.ran, []);
  assert.equal(doc.nodes.filter((s) => s.getAttribute('type') === 'text/plain').length, 2);
});

test('the live script keeps the attributes, drops the blocking type, honours data-type', async () => {
  const doc = fakeDocument([
    parked('analytics', '', { src: 'm.js', 'data-type': 'module', id: 'tag', crossorigin: 'anonymous' }),
    parked('analytics', 'classic()'),
  ]);
  await unblock(doc, () => true);
  const [mod, classic] = doc.nodes;
  assert.equal(mod.getAttribute('type'), 'module');
  assert.equal(mod.getAttribute('id'), 'tag');
  assert.equal(mod.getAttribute('crossorigin'), 'anonymous');
  assert.equal(mod.getAttribute('data-consent'), 'analytics');
  assert.equal(mod.async, false);
  assert.equal(classic.getAttribute('type'), null);
  assert.equal(classic.text, 'classic()');
});

test('a failing src script does not hold back the ones after it', async () => {
  const doc = fakeDocument([parked('a', '', { src: 'broken.js' }), parked('a', 'after')]);
  await unblock(doc, () => true);
  assert.deepEqual(doc.ran, ['broken.js', 'after']);
});

test('a script keeps the nonce its own tag carries, and gets none when it has none', async () => {
  const own = parked('a', 'with()');
  own.nonce = 'n0nce'; // browsers keep it in the property and hide the attribute
  own.setAttribute('nonce', '');
  const doc = fakeDocument([own, parked('a', 'without()')]);
  await unblock(doc, () => true);
  const [withNonce, without] = doc.nodes;
  assert.equal(withNonce.nonce, 'n0nce');
  assert.equal(without.nonce, undefined);
  assert.equal(without.getAttribute('nonce'), null);
});
