import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EnrolmentError, enrolDevice } from '../../extension/background/enrolment.js';

function fakeFetch(status, body, calls = []) {
  return async (url, init) => {
    calls.push({ url, init });
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    return new Response(text, { status, headers: { 'Content-Type': 'application/json' } });
  };
}

const ENROLLED = {
  device: { id: 7, label: 'Front desk' },
  token: 'dev-token-123',
  uninstall_url: 'http://127.0.0.1:5000/devices/removed/removal-token',
  agent: { id: 3, email: 'agent1@demo.veil', display_name: 'Agent One' },
  tenant: { id: 1, name: 'Demo Co' },
};

describe('enrolDevice', () => {
  it('posts the code to the enrol endpoint and returns the stored shape', async () => {
    const calls = [];
    const enrolment = await enrolDevice({
      serverUrl: 'http://127.0.0.1:5000',
      code: 'K7QF-3MZP',
      label: 'Front desk',
      userAgent: 'UA',
      fetchImpl: fakeFetch(201, ENROLLED, calls),
    });

    assert.equal(calls.length, 1);
    assert.equal(calls[0].url, 'http://127.0.0.1:5000/api/v1/devices/enrol');
    assert.equal(calls[0].init.method, 'POST');
    assert.equal(calls[0].init.credentials, 'omit');
    assert.deepEqual(JSON.parse(calls[0].init.body), { code: 'K7QF-3MZP', label: 'Front desk', user_agent: 'UA' });
    assert.deepEqual(enrolment, {
      serverUrl: 'http://127.0.0.1:5000',
      token: 'dev-token-123',
      uninstallUrl: 'http://127.0.0.1:5000/devices/removed/removal-token',
      device: { id: 7, label: 'Front desk' },
      agent: { id: 3, email: 'agent1@demo.veil', displayName: 'Agent One' },
      tenant: { id: 1, name: 'Demo Co' },
    });
  });

  it('leaves out an empty label', async () => {
    const calls = [];
    await enrolDevice({ serverUrl: 'https://x.test', code: 'AAAA-BBBB', fetchImpl: fakeFetch(201, ENROLLED, calls) });
    assert.deepEqual(JSON.parse(calls[0].init.body), { code: 'AAAA-BBBB' });
  });

  it("passes the server's error code and message on", async () => {
    const fetchImpl = fakeFetch(400, { error: { code: 'invalid_code', message: 'Unknown or expired code' } });
    await assert.rejects(
      enrolDevice({ serverUrl: 'https://x.test', code: 'AAAA-BBBB', fetchImpl }),
      (error) => error instanceof EnrolmentError && error.code === 'invalid_code'
        && error.message === 'Unknown or expired code',
    );
  });

  it('names the HTTP status when the error body is not JSON', async () => {
    await assert.rejects(
      enrolDevice({ serverUrl: 'https://x.test', code: 'AAAA-BBBB', fetchImpl: fakeFetch(502, '<html>Bad gateway') }),
      { name: 'EnrolmentError', code: 'http_502' },
    );
  });

  it('reports an unreachable server', async () => {
    const fetchImpl = async () => {
      throw new TypeError('Failed to fetch');
    };
    await assert.rejects(enrolDevice({ serverUrl: 'https://x.test', code: 'AAAA-BBBB', fetchImpl }), {
      code: 'unreachable',
    });
  });

  it("keeps the removal link's path on the server it enrolled with", async () => {
    const behindProxy = { ...ENROLLED, uninstall_url: 'http://10.0.0.5:5000/veil/devices/removed/abc' };
    const enrolment = await enrolDevice({ serverUrl: 'https://veil.example.com/veil', code: 'AAAA-BBBB',
      fetchImpl: fakeFetch(201, behindProxy) });
    assert.equal(enrolment.uninstallUrl, 'https://veil.example.com/veil/devices/removed/abc');
  });

  it('has no removal link when the server sent none (an older server)', async () => {
    const { uninstall_url: link, ...older } = ENROLLED;
    assert.ok(link);
    const enrolment = await enrolDevice({ serverUrl: 'https://x.test', code: 'AAAA-BBBB',
      fetchImpl: fakeFetch(201, older) });
    assert.equal(enrolment.uninstallUrl, null);
  });

  it('refuses a success answer without a token', async () => {
    const { token, ...withoutToken } = ENROLLED;
    assert.ok(token);
    await assert.rejects(
      enrolDevice({ serverUrl: 'https://x.test', code: 'AAAA-BBBB', fetchImpl: fakeFetch(201, withoutToken) }),
      { code: 'bad_response' },
    );
  });
});
