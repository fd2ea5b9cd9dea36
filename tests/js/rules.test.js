import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createRulesSync } from '../../extension/background/rules.js';

const ENROLMENT = { serverUrl: 'https://veil.example.com', token: 'dev-token' };

function memoryStore(rules = null) {
  const data = { rules };
  return { data, loadRules: async () => data.rules, saveRules: async (r) => { data.rules = r; } };
}

function fakeServer(payload, version = 3) {
  const requests = [];
  const fetchImpl = async (url, options) => {
    requests.push({ url, headers: options.headers });
    const etag = `"${payload.hash}"`;
    if (options.headers['If-None-Match'] === etag) return new Response(null, { status: 304, headers: { ETag: etag } });
    return new Response(JSON.stringify(payload), {
      status: 200, headers: { ETag: etag, 'X-Veil-Rules-Version': String(version), 'Content-Type': 'application/json' },
    });
  };
  return { requests, fetchImpl };
}

describe('rules cache', () => {
  it('fetches with the device token, caches payload and ETag, then asks with If-None-Match', async () => {
    const store = memoryStore({ payload: { hash: 'seed' }, etag: null, salt: 'pepper' });
    const server = fakeServer({ hash: 'abc', words: [] });
    const heard = [];
    const rules = createRulesSync({ store, fetchImpl: server.fetchImpl, onRules: (r) => heard.push(r) });
    await rules.sync(ENROLMENT);
    assert.equal(server.requests[0].url, 'https://veil.example.com/api/v1/rules');
    assert.equal(server.requests[0].headers.Authorization, 'Bearer dev-token');
    assert.equal(server.requests[0].headers['If-None-Match'], undefined);
    assert.deepEqual(store.data.rules.payload, { hash: 'abc', words: [] });
    assert.equal(store.data.rules.etag, '"abc"');
    assert.equal(store.data.rules.version, 3);
    assert.equal(store.data.rules.salt, 'pepper', 'what the seed carried stays');
    await rules.sync(ENROLMENT);
    assert.equal(server.requests[1].headers['If-None-Match'], '"abc"');
    assert.deepEqual(heard.map((r) => r.version), [3, 3]);
  });

  it('skips the request when a pushed version is already cached', async () => {
    const store = memoryStore({ payload: { hash: 'abc' }, etag: '"abc"', hash: 'abc', version: 2 });
    const server = fakeServer({ hash: 'def' }, 4);
    const rules = createRulesSync({ store, fetchImpl: server.fetchImpl });
    await rules.sync(ENROLMENT, 'abc');
    assert.equal(server.requests.length, 0);
    await rules.sync(ENROLMENT, 'def');
    assert.equal(store.data.rules.version, 4);
  });

  it('keeps the cache when the server cannot be reached', async () => {
    const cached = { payload: { hash: 'abc' }, etag: '"abc"', hash: 'abc', version: 2 };
    const store = memoryStore(cached);
    const warnings = [];
    const rules = createRulesSync({
      store, fetchImpl: async () => { throw new TypeError('Failed to fetch'); }, log: { warn: (...a) => warnings.push(a) },
    });
    await rules.sync(ENROLMENT);
    assert.equal(store.data.rules, cached);
    assert.equal(warnings.length, 1);
  });
});
