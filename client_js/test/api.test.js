import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createApi, createSubjectApi } from '../src/api.js';

const json = (status, body = {}) => ({ ok: status >= 200 && status < 300, status, json: async () => body });

/** A fetch stub answering from `answers` in turn (an Error is thrown as a network failure). */
function stubFetch(...answers) {
  const calls = [];
  const fetch = async (url, init) => {
    calls.push({ url, init });
    const a = answers[Math.min(calls.length, answers.length) - 1];
    if (a instanceof Error) throw a;
    return a;
  };
  return { fetch, calls };
}

const BODY = { subject_id: 'anon-1', decisions: [{ purpose: 'ads', granted: true }], policy_version: 'v1', locale: 'en', gpc: false };

test('config is a GET with the locale and the publishable key as bearer token', async () => {
  const { fetch, calls } = stubFetch(json(200, { tenant: { id: 't1' } }));
  const api = createApi('https://consent.example.com/', 'pk_abc', fetch);
  assert.deepEqual(await api.config('zh-CN'), { tenant: { id: 't1' } });
  assert.equal(calls[0].url, 'https://consent.example.com/v1/public/config?locale=zh-CN');
  assert.equal(calls[0].init.headers.Authorization, 'Bearer pk_abc');
  assert.equal(calls[0].init.method, undefined);
  assert.equal(calls[0].init.credentials, 'omit');
});

test('config rejects on an error status', async () => {
  const { fetch } = stubFetch(json(401));
  await assert.rejects(createApi('https://h', 'pk', fetch).config('en'), /401/);
});

test('consents is a keepalive JSON POST with bearer key and idempotency key', async () => {
  const { fetch, calls } = stubFetch(json(201, { receipt: 'jwt' }));
  const api = createApi('https://h', 'pk_abc', fetch);
  assert.deepEqual(await api.consents(BODY, 'idem-1'), { receipt: 'jwt' });
  const { url, init } = calls[0];
  assert.equal(url, 'https://h/v1/public/consents');
  assert.equal(init.method, 'POST');
  assert.equal(init.keepalive, true);
  assert.deepEqual(init.headers, { Authorization: 'Bearer pk_abc', 'Content-Type': 'application/json', 'Idempotency-Key': 'idem-1' });
  assert.deepEqual(JSON.parse(init.body), BODY);
});

test('a failed POST is retried with backoff under the same idempotency key', async () => {
  const waits = [];
  const { fetch, calls } = stubFetch(new TypeError('network'), json(503), json(429), json(201, { ok: 1 }));
  const api = createApi('https://h', 'pk', fetch, async (ms) => waits.push(ms), [10, 20, 30, 40]);
  assert.deepEqual(await api.consents(BODY, 'idem-2'), { ok: 1 });
  assert.equal(calls.length, 4);
  assert.deepEqual(waits, [10, 20, 30]);
  assert.ok(calls.every((c) => c.init.headers['Idempotency-Key'] === 'idem-2'));
});

test('a refused POST (4xx) is not retried', async () => {
  const waits = [];
  const { fetch, calls } = stubFetch(json(422));
  const api = createApi('https://h', 'pk', fetch, async (ms) => waits.push(ms), [10]);
  await assert.rejects(api.consents(BODY, 'k'), /422/);
  assert.equal(calls.length, 1);
  assert.deepEqual(waits, []);
});

test('retries stop after the last delay', async () => {
  const waits = [];
  const { fetch, calls } = stubFetch(json(500));
  await assert.rejects(createApi('https://h', 'pk', fetch, async (ms) => waits.push(ms), [1, 2]).consents(BODY, 'k'), /500/);
  assert.equal(calls.length, 3);
  assert.deepEqual(waits, [1, 2]);

  const net = stubFetch(new TypeError('offline'));
  await assert.rejects(createApi('https://h', 'pk', net.fetch, async () => {}, [1]).consents(BODY, 'k'), /offline/);
  assert.equal(net.calls.length, 2);
});

test('the retry wait does not block the caller', async () => {
  let release;
  const { fetch } = stubFetch(json(503), json(201, {}));
  const pending = createApi('https://h', 'pk', fetch, () => new Promise((r) => { release = r; }), [1000]).consents(BODY, 'k');
  await new Promise((r) => setImmediate(r));
  assert.equal(typeof release, 'function');
  release();
  assert.deepEqual(await pending, {});
});

test('app mode reads the subject\'s state with its subject token', async () => {
  const { fetch, calls } = stubFetch(json(200, { purposes: { ads: { status: 'granted' } } }));
  const api = createSubjectApi('https://h/', 'user 1/2', 'eyJ.jwt.sig', fetch);
  assert.deepEqual(await api.state(), { purposes: { ads: { status: 'granted' } } });
  assert.equal(calls[0].url, 'https://h/v1/subjects/user%201%2F2/consents');
  assert.equal(calls[0].init.headers.Authorization, 'Bearer eyJ.jwt.sig');
  assert.equal(calls[0].init.credentials, 'omit');
});

test('an account the server has never seen (404) has decided nothing; other errors reject', async () => {
  assert.deepEqual(await createSubjectApi('https://h', 'u1', 't', stubFetch(json(404)).fetch).state(), { purposes: {} });
  await assert.rejects(createSubjectApi('https://h', 'u1', 't', stubFetch(json(401)).fetch).state(), /401/);
  await assert.rejects(createApi('https://h', 'pk', stubFetch(json(404)).fetch).config('en'), /404/);
});

test('app mode records through the subject endpoint, retried under one idempotency key', async () => {
  const waits = [];
  const { fetch, calls } = stubFetch(json(503), json(201, { events: [] }));
  const api = createSubjectApi('https://h', 'u1', 'tok', fetch, async (ms) => waits.push(ms), [5]);
  const body = { decisions: [{ purpose: 'ads', granted: false }], policy_version: 'v1', source: { channel: 'web' }, locale: 'en' };
  assert.deepEqual(await api.consents(body, 'idem-3'), { events: [] });
  assert.equal(calls.length, 2);
  assert.ok(calls.every((c) => c.url === 'https://h/v1/subjects/u1/consents' && c.init.method === 'POST'));
  assert.ok(calls.every((c) => c.init.headers.Authorization === 'Bearer tok' && c.init.headers['Idempotency-Key'] === 'idem-3'));
  assert.deepEqual(JSON.parse(calls[1].init.body), body);
  assert.deepEqual(waits, [5]);
});
