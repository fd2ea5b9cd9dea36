import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { beforeEach, describe, it } from 'node:test';
import { createConnection } from '../../extension/background/connection.js';

const ENROLMENT = {
  serverUrl: 'http://127.0.0.1:5000',
  token: 'dev-token',
  device: { id: 7, label: 'Desk' },
  agent: { id: 3, email: 'agent1@demo.veil', displayName: 'Agent One' },
  tenant: { id: 1, name: 'Demo Co' },
};

// Just enough of socket.io-client's Socket for the connection's use of it.
class FakeSocket extends EventEmitter {
  constructor(url, options) {
    super();
    this.url = url;
    this.options = options;
    this.active = true;
    this.emitted = [];
    this.disconnected = false;
  }
  timeout() {
    return { emit: (event, payload, ack) => this.emitted.push({ event, payload, ack }) };
  }
  off() {
    this.removeAllListeners();
  }
  disconnect() {
    this.disconnected = true;
  }
}

function fakeTimers() {
  const pending = [];
  return {
    pending,
    setTimeout: (fn, ms) => pending.push({ fn, ms, kind: 'timeout' }),
    clearTimeout: () => {},
    setInterval: (fn, ms) => pending.push({ fn, ms, kind: 'interval' }),
    clearInterval: () => {},
  };
}

function memoryStore(enrolment) {
  const data = { enrolment, lastHeartbeatAt: null };
  return {
    data,
    loadEnrolment: async () => data.enrolment,
    loadLastHeartbeat: async () => data.lastHeartbeatAt,
    saveLastHeartbeat: async (at) => {
      data.lastHeartbeatAt = at;
    },
  };
}

describe('createConnection', () => {
  let sockets, statuses, timers;
  const io = (url, options) => {
    const socket = new FakeSocket(url, options);
    sockets.push(socket);
    return socket;
  };
  const make = (store) => createConnection({ io, store, onStatus: (s) => statuses.push(s), timers });

  beforeEach(() => {
    sockets = [];
    statuses = [];
    timers = fakeTimers();
  });

  it('does not connect before enrolment', async () => {
    const connection = make(memoryStore(null));
    await connection.start();
    assert.equal(sockets.length, 0);
    assert.equal(connection.getStatus().connection, 'not-enrolled');
    assert.equal(connection.getStatus().enrolled, false);
  });

  it('connects to /agent over websocket with the device token', async () => {
    const connection = make(memoryStore(ENROLMENT));
    await connection.start();
    assert.equal(sockets.length, 1);
    assert.equal(sockets[0].url, 'http://127.0.0.1:5000/agent');
    assert.deepEqual(sockets[0].options.transports, ['websocket']);
    assert.deepEqual(sockets[0].options.auth, { token: 'dev-token' });
    assert.equal(sockets[0].options.path, '/socket.io');
    assert.equal(connection.getStatus().connection, 'connecting');
    assert.equal(connection.getStatus().agentEmail, 'agent1@demo.veil');
  });

  it('opens only one socket when woken several times at once', async () => {
    const connection = make(memoryStore(ENROLMENT));
    await Promise.all([connection.start(), connection.start(), connection.start()]);
    await connection.start();
    assert.equal(sockets.length, 1);
  });

  it('sends a heartbeat on connect and records the acknowledged time', async () => {
    const store = memoryStore(ENROLMENT);
    const connection = make(store);
    await connection.start();
    sockets[0].emit('connect');

    assert.equal(connection.getStatus().connection, 'connected');
    assert.equal(sockets[0].emitted.length, 1);
    const [{ event, payload, ack }] = sockets[0].emitted;
    assert.equal(event, 'heartbeat');
    assert.ok(!Number.isNaN(Date.parse(payload.sent_at)));
    assert.ok(timers.pending.some((t) => t.kind === 'interval' && t.ms < 30_000));

    await ack(null, { ok: true, server_time: '2030-01-01T00:00:00+00:00' });
    assert.ok(store.data.lastHeartbeatAt);
    assert.equal(connection.getStatus().lastHeartbeatAt, store.data.lastHeartbeatAt);
    assert.equal(statuses.at(-1).lastHeartbeatAt, store.data.lastHeartbeatAt);
  });

  it('does not record a heartbeat that was not acknowledged', async () => {
    const store = memoryStore(ENROLMENT);
    const connection = make(store);
    await connection.start();
    sockets[0].emit('connect');
    await sockets[0].emitted[0].ack(new Error('operation has timed out'));
    assert.equal(store.data.lastHeartbeatAt, null);
    assert.equal(connection.getStatus().lastHeartbeatAt, null);
  });

  it('retries with backoff after the link drops', async () => {
    const connection = make(memoryStore(ENROLMENT));
    await connection.start();
    sockets[0].emit('connect');
    sockets[0].emit('disconnect', 'transport close');

    assert.equal(connection.getStatus().connection, 'disconnected');
    assert.ok(sockets[0].disconnected);
    const retry = timers.pending.find((t) => t.kind === 'timeout');
    assert.ok(retry.ms >= 1000 && retry.ms <= 1200);

    await connection.start();
    assert.equal(sockets.length, 1, 'a wake-up while a retry is pending must not connect early');
    retry.fn();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(sockets.length, 2);
  });

  it('stops retrying when the server refuses the token', async () => {
    const connection = make(memoryStore(ENROLMENT));
    await connection.start();
    sockets[0].active = false;
    sockets[0].emit('connect_error', new Error('unauthorized'));

    assert.equal(connection.getStatus().connection, 'refused');
    assert.equal(timers.pending.filter((t) => t.kind === 'timeout').length, 0);
    await connection.start();
    assert.equal(sockets.length, 1);
  });

  it('hands a connected socket to the stream and takes it back when the link drops', async () => {
    const links = [];
    const connection = createConnection({
      io, store: memoryStore(ENROLMENT), onStatus: (s) => statuses.push(s), timers,
      onConnected: (socket, enrolment) => links.push(['up', socket, enrolment.token]),
      onDisconnected: () => links.push(['down']),
    });
    await connection.start();
    assert.deepEqual(links, [], 'not before the server accepted the token');
    sockets[0].emit('connect');
    assert.deepEqual(links, [['up', sockets[0], 'dev-token']]);
    sockets[0].emit('disconnect', 'transport close');
    assert.deepEqual(links.at(-1), ['down']);
  });

  it('reports the outbox and the rules version in its status, across restarts', async () => {
    const connection = make(memoryStore(ENROLMENT));
    assert.equal(connection.getStatus().outbox, 0);
    assert.equal(connection.getStatus().rulesVersion, null);
    await connection.start();
    connection.report({ outbox: 12 });
    connection.report({ rulesVersion: 4 });
    assert.equal(statuses.at(-1).outbox, 12);
    assert.equal(statuses.at(-1).rulesVersion, 4);
    await connection.restart();
    assert.equal(connection.getStatus().outbox, 12);
    assert.equal(connection.getStatus().rulesVersion, 4);
  });

  it('starts afresh from the store on restart', async () => {
    const store = memoryStore(ENROLMENT);
    const connection = make(store);
    await connection.start();
    store.data.enrolment = null;
    await connection.restart();
    assert.ok(sockets[0].disconnected);
    assert.equal(connection.getStatus().enrolled, false);
  });
});
