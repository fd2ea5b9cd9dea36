import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import { IDBFactory } from 'fake-indexeddb';
import { openOutbox } from '../../extension/background/outbox.js';
import { ACK_TIMEOUT_MS, createStream } from '../../extension/background/stream.js';
import { MAX_BATCH_BYTES, MAX_BATCH_EVENTS } from '../../extension/shared/events.js';

const AT = Date.UTC(2026, 10, 23, 8, 0, 0);

function message(n, fields = {}) {
  return {
    id: `event-${String(n).padStart(4, '0')}`, type: 'message', at: AT + n, console: 'whatsapp',
    conversation: { key: 'chat-1' }, message_id: `row-${n}`, direction: 'in', text: `hello ${n}`, ...fields,
  };
}

// socket.io-client's `socket.timeout(ms).emit(event, data, ack)`, with the acks left to the test.
class FakeSocket {
  constructor() {
    this.sent = [];
  }
  timeout(ms) {
    return { emit: (event, data, ack) => this.sent.push({ ms, event, data, ack }) };
  }
  get last() {
    return this.sent.at(-1);
  }
}

function fakeTimers() {
  const pending = new Map();
  let next = 1;
  return {
    pending,
    setTimeout(fn, ms) {
      pending.set(next, { fn, ms });
      return next++;
    },
    clearTimeout(id) {
      pending.delete(id);
    },
    fire() {
      const [[id, timer]] = pending;
      pending.delete(id);
      timer.fn();
      return timer.ms;
    },
  };
}

async function until(condition, what) {
  for (let i = 0; i < 200; i += 1) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  assert.fail(`timed out waiting for ${what}`);
}

const ids = (sent) => sent.data.events.map((e) => e.id);

describe('event stream', () => {
  let indexedDB, outbox, timers, counts, warnings, stream;
  const make = (db = indexedDB) => createStream({
    outbox: openOutbox({ indexedDB: db }), timers, random: () => 0.5,
    onCount: (n) => counts.push(n), log: { warn: (...args) => warnings.push(args), error: () => {} },
  });

  beforeEach(async () => {
    indexedDB = new IDBFactory();
    outbox = await openOutbox({ indexedDB });
    timers = fakeTimers();
    counts = [];
    warnings = [];
    stream = make();
  });

  it('answers a hand-off only once the events are stored, and names the invalid ones', async () => {
    const answer = await stream.queue([message(1), { ...message(2), at: 'now' }, message(3), 42]);
    assert.deepEqual(answer, {
      ok: true, queued: 2, errors: [
        { index: 1, id: 'event-0002', code: 'wrong_type', field: 'at' },
        { index: 3, id: null, code: 'not_an_object', field: null },
      ],
    });
    assert.equal(await outbox.count(), 2);
    assert.equal(counts.at(-1), 2);
    assert.deepEqual(await stream.queue('nope'), { ok: false, error: { code: 'invalid_events' } });
  });

  it('sends in order, one batch at a time, and deletes what the server acknowledged', async () => {
    await stream.queue([message(1), message(2)]);
    const socket = new FakeSocket();
    stream.attach(socket);
    await until(() => socket.sent.length === 1, 'the first batch');
    assert.equal(socket.last.event, 'events');
    assert.equal(socket.last.ms, ACK_TIMEOUT_MS);
    assert.equal(socket.last.data.v, 1);
    assert.deepEqual(ids(socket.last), ['event-0001', 'event-0002']);

    await stream.queue([message(3)]);
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(socket.sent.length, 1, 'nothing more goes out while a batch waits for its answer');

    socket.last.ack(null, { ok: true, acked: ['event-0001', 'event-0002'], errors: [] });
    await until(() => socket.sent.length === 2, 'the next batch');
    assert.deepEqual(ids(socket.last), ['event-0003']);
    socket.last.ack(null, { ok: true, acked: ['event-0003'], errors: [] });
    await until(async () => (await outbox.count()) === 0, 'an empty outbox');
    await until(() => counts.at(-1) === 0, 'the count to reach 0');
    assert.equal(socket.sent.length, 2);
  });

  it('keeps batches within the protocol limits', async () => {
    await stream.queue(Array.from({ length: MAX_BATCH_EVENTS + 20 }, (_, n) => message(n)));
    const socket = new FakeSocket();
    stream.attach(socket);
    await until(() => socket.sent.length === 1, 'a batch');
    assert.equal(socket.last.data.events.length, MAX_BATCH_EVENTS);
    socket.last.ack(null, { ok: true, acked: ids(socket.last), errors: [] });
    await until(() => socket.sent.length === 2, 'the rest');
    assert.equal(socket.last.data.events.length, 20);

    const big = 'x'.repeat(60_000);
    await stream.queue(Array.from({ length: 20 }, (_, n) => message(500 + n, { text: big })));
    socket.last.ack(null, { ok: true, acked: ids(socket.last), errors: [] });
    await until(() => socket.sent.length === 3, 'a batch of large events');
    const bytes = new TextEncoder().encode(JSON.stringify(socket.last.data.events)).length;
    assert.ok(bytes <= MAX_BATCH_BYTES, `${bytes} bytes`);
    assert.equal(socket.last.data.events.length, 8);
  });

  it('sends a batch again when its answer does not come, after a backoff', async () => {
    await stream.queue([message(1)]);
    const socket = new FakeSocket();
    stream.attach(socket);
    await until(() => socket.sent.length === 1, 'a batch');
    socket.last.ack(new Error('operation has timed out'));
    await until(() => timers.pending.size === 1, 'a retry timer');
    assert.equal(socket.sent.length, 1);
    assert.equal(timers.fire(), 1000);
    await until(() => socket.sent.length === 2, 'the same batch again');
    assert.deepEqual(ids(socket.last), ['event-0001']);
    assert.equal(await outbox.count(), 1);
  });

  it('keeps what was neither acknowledged nor refused, and drops (but logs) what was refused', async () => {
    await stream.queue([message(1), message(2), message(3)]);
    const socket = new FakeSocket();
    stream.attach(socket);
    await until(() => socket.sent.length === 1, 'a batch');
    socket.last.ack(null, {
      ok: true, acked: ['event-0001', 'somebody-else'],
      errors: [{ id: 'event-0003', error: 'too_long', field: 'text', message: 'too long' }],
    });
    await until(() => socket.sent.length === 2, 'the rest');
    assert.deepEqual(ids(socket.last), ['event-0002']);
    assert.equal(warnings.length, 1);
    assert.ok(warnings[0].includes('event-0003'));
  });

  it('does not store an event handed over twice, and a resent batch is acknowledged as before', async () => {
    await stream.queue([message(1)]);
    await stream.queue([message(1), message(2)]);
    assert.equal(await outbox.count(), 2);
    const socket = new FakeSocket();
    stream.attach(socket);
    await until(() => socket.sent.length === 1, 'a batch');
    assert.deepEqual(ids(socket.last), ['event-0001', 'event-0002']);
  });

  it('waits as long as the server asks when it is flooded', async () => {
    await stream.queue([message(1)]);
    const socket = new FakeSocket();
    stream.attach(socket);
    await until(() => socket.sent.length === 1, 'a batch');
    socket.last.ack(null, { ok: false, error: { code: 'rate_limited', message: '', details: { retry_after: 7 } } });
    await until(() => timers.pending.size === 1, 'the wait');
    await stream.queue([message(2)]);
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(socket.sent.length, 1, 'new events wait too');
    assert.equal(timers.fire(), 7000);
    await until(() => socket.sent.length === 2, 'the batch again');
    assert.deepEqual(ids(socket.last), ['event-0001', 'event-0002']);
  });

  it('leaves an unauthorized device to the connection', async () => {
    await stream.queue([message(1)]);
    const socket = new FakeSocket();
    stream.attach(socket);
    await until(() => socket.sent.length === 1, 'a batch');
    socket.last.ack(null, { ok: false, error: { code: 'unauthorized', message: '' } });
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(timers.pending.size, 0);
    assert.equal(await outbox.count(), 1);
  });

  it('sends again on a new link what an old link left unanswered', async () => {
    await stream.queue([message(1)]);
    const first = new FakeSocket();
    stream.attach(first);
    await until(() => first.sent.length === 1, 'a batch');
    stream.detach();
    const second = new FakeSocket();
    stream.attach(second);
    await until(() => second.sent.length === 1, 'the batch on the new link');
    first.last.ack(null, { ok: true, acked: ['event-0001'], errors: [] }); // late: the new link's answer counts
    second.last.ack(null, { ok: true, acked: ['event-0001'], errors: [] });
    await until(async () => (await outbox.count()) === 0, 'an empty outbox');
    assert.equal(second.sent.length, 1);
  });

  it('picks up after the worker was stopped', async () => {
    await stream.queue([message(1), message(2)]);
    const restarted = make(indexedDB);
    const socket = new FakeSocket();
    restarted.attach(socket);
    await until(() => socket.sent.length === 1, 'a batch from the stored outbox');
    assert.deepEqual(ids(socket.last), ['event-0001', 'event-0002']);
  });
});
