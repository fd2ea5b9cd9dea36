import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IDBFactory } from 'fake-indexeddb';
import { openOutbox } from '../../extension/background/outbox.js';
import { eventBytes } from '../../extension/shared/events.js';

const event = (n, text = `hello ${n}`) => ({ id: `event-${String(n).padStart(4, '0')}`, type: 'message', text });
const ids = (events) => events.map((e) => e.id);

// A fresh IndexedDB for every test: nothing carries over.
const fresh = () => openOutbox({ indexedDB: new IDBFactory() });

describe('outbox', () => {
  it('keeps events in the order they were handed over', async () => {
    const outbox = await fresh();
    assert.equal(await outbox.add([event(3), event(1)]), 2);
    assert.equal(await outbox.add([event(2)]), 1);
    assert.deepEqual(ids(await outbox.peekBatch(10, 1e9)), ['event-0003', 'event-0001', 'event-0002']);
    assert.equal(await outbox.count(), 3);
  });

  it('stores an event handed over twice once, and keeps the rest of that hand-off', async () => {
    const outbox = await fresh();
    await outbox.add([event(1)]);
    assert.equal(await outbox.add([event(1), event(2), event(2), event(3)]), 2);
    assert.deepEqual(ids(await outbox.peekBatch(10, 1e9)), ['event-0001', 'event-0002', 'event-0003']);
  });

  it('bounds a batch by count and by bytes, but always gives the oldest event', async () => {
    const outbox = await fresh();
    const events = [event(1, 'x'.repeat(300)), event(2, 'y'.repeat(300)), event(3), event(4)];
    await outbox.add(events);
    assert.deepEqual(ids(await outbox.peekBatch(2, 1e9)), ['event-0001', 'event-0002']);
    const oneAndAHalf = eventBytes(events[0]) + eventBytes(events[1]) / 2;
    assert.deepEqual(ids(await outbox.peekBatch(10, oneAndAHalf)), ['event-0001']);
    assert.deepEqual(ids(await outbox.peekBatch(10, 1)), ['event-0001'], 'a large event still goes, alone');
    assert.equal(await outbox.count(), 4, 'peeking takes nothing out');
  });

  it('removes exactly the ids it is given', async () => {
    const outbox = await fresh();
    await outbox.add([event(1), event(2), event(3)]);
    await outbox.remove(['event-0002', 'event-0009', 'event-0002']);
    assert.deepEqual(ids(await outbox.peekBatch(10, 1e9)), ['event-0001', 'event-0003']);
    await outbox.remove(['event-0001', 'event-0003']);
    assert.equal(await outbox.count(), 0);
    assert.deepEqual(await outbox.peekBatch(10, 1e9), []);
  });

  it('keeps everything across a restart of the worker', async () => {
    const indexedDB = new IDBFactory();
    const first = await openOutbox({ indexedDB });
    await first.add([event(1), event(2)]);
    first.close();
    const second = await openOutbox({ indexedDB });
    await second.add([event(2), event(3)]);
    assert.deepEqual(ids(await second.peekBatch(10, 1e9)), ['event-0001', 'event-0002', 'event-0003']);
  });

  it('can be emptied', async () => {
    const outbox = await fresh();
    await outbox.add([event(1)]);
    await outbox.clear();
    assert.equal(await outbox.count(), 0);
  });
});
