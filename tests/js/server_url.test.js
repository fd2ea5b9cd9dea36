import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { normaliseServerUrl, socketEndpoint } from '../../extension/shared/server_url.js';

describe('normaliseServerUrl', () => {
  const accepted = [
    ['http://127.0.0.1:5000', 'http://127.0.0.1:5000'],
    ['  http://127.0.0.1:5000/  ', 'http://127.0.0.1:5000'],
    ['HTTPS://Veil.Example.COM/', 'https://veil.example.com'],
    ['https://veil.example.com/tenant/veil//', 'https://veil.example.com/tenant/veil'],
    ['veil.example.com', 'https://veil.example.com'],
    ['localhost:5000', 'http://localhost:5000'],
    ['127.0.0.1:8080', 'http://127.0.0.1:8080'],
    ['http://[::1]:5000', 'http://[::1]:5000'],
    ['http://veil.localhost:5000', 'http://veil.localhost:5000'],
    ['https://veil.example.com:443', 'https://veil.example.com'],
  ];
  for (const [input, expected] of accepted) {
    it(`accepts ${JSON.stringify(input)}`, () => {
      assert.deepEqual(normaliseServerUrl(input), { ok: true, url: expected });
    });
  }

  const refused = [
    ['', 'empty'],
    ['   ', 'empty'],
    [null, 'empty'],
    ['http://veil.example.com', 'insecure'],
    ['http://192.168.1.10:5000', 'insecure'],
    ['ftp://veil.example.com', 'scheme'],
    ['javascript://alert(1)', 'scheme'],
    ['https://user:pass@veil.example.com', 'invalid'],
    ['https://veil.example.com/?next=/evil', 'invalid'],
    ['https://veil.example.com/#x', 'invalid'],
    ['https://exa mple.com', 'invalid'],
  ];
  for (const [input, reason] of refused) {
    it(`refuses ${JSON.stringify(input)} as ${reason}`, () => {
      assert.deepEqual(normaliseServerUrl(input), { ok: false, reason });
    });
  }
});

describe('socketEndpoint', () => {
  it('puts the namespace on the origin for a server at the root', () => {
    assert.deepEqual(socketEndpoint('http://127.0.0.1:5000', '/agent'), {
      url: 'http://127.0.0.1:5000/agent',
      path: '/socket.io',
    });
  });

  it('moves a path prefix into the engine path, not the namespace', () => {
    assert.deepEqual(socketEndpoint('https://example.com/veil', '/agent'), {
      url: 'https://example.com/agent',
      path: '/veil/socket.io',
    });
  });
});
