import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { applyRemovalLink, createOfflineWatch } from '../../extension/background/behaviour_watch.js';
import { eventProblem } from '../../extension/shared/events.js';

const ENROLMENT = {
  serverUrl: 'https://veil.example.com',
  token: 'dev-token',
  uninstallUrl: 'https://veil.example.com/devices/removed/removal-token',
  device: { id: 7, label: 'Desk' },
};
const LOST_AT = Date.UTC(2026, 10, 23, 8, 0, 0);

function fakeRuntime() {
  const urls = [];
  return { urls, setUninstallURL: async (url) => urls.push(url) };
}

describe('applyRemovalLink', () => {
  it("gives Chrome the enrolment's removal link and clears it when the device is forgotten", async () => {
    const runtime = fakeRuntime();
    await applyRemovalLink(ENROLMENT, runtime);
    await applyRemovalLink(null, runtime);
    assert.deepEqual(runtime.urls, ['https://veil.example.com/devices/removed/removal-token', '']);
  });

  it('clears the link for an enrolment that has none', async () => {
    const runtime = fakeRuntime();
    await applyRemovalLink({ ...ENROLMENT, uninstallUrl: null }, runtime);
    assert.deepEqual(runtime.urls, ['']);
  });

  it('only logs when Chrome refuses the link', async () => {
    const warnings = [];
    const runtime = { setUninstallURL: async () => { throw new Error('Invalid URL'); } };
    await applyRemovalLink(ENROLMENT, runtime, { warn: (...args) => warnings.push(args) });
    assert.equal(warnings.length, 1);
  });
});

function memoryStore(stored = null) {
  const data = { linkWatch: stored };
  return {
    data,
    loadLinkWatch: async () => data.linkWatch,
    saveLinkWatch: async (state) => {
      data.linkWatch = structuredClone(state);
    },
  };
}

function message(n) {
  return {
    id: `event-${String(n).padStart(4, '0')}`, type: 'message', at: LOST_AT + n, console: 'whatsapp',
    account: 'Acme sales', conversation: { key: 'chat-1' }, message_id: `row-${n}`, direction: 'in', text: 'hi',
  };
}

const status = (connection, enrolled = true) => ({ enrolled, connection });

describe('createOfflineWatch', () => {
  function make(store = memoryStore()) {
    const queued = [];
    let clock = LOST_AT;
    let ids = 0;
    const watch = createOfflineWatch({
      store,
      queue: async (events) => queued.push(...events),
      now: () => clock,
      newId: () => `offline-${String(++ids).padStart(4, '0')}`,
    });
    return { watch, queued, store, tick: (ms) => { clock += ms; } };
  }

  it('queues one offline_use per disconnection, and another after the next one', async () => {
    const { watch, queued, tick } = make();
    watch.follow(status('connecting'));
    watch.follow(status('connected'));
    await watch.notice([message(1)], status('connected'));
    assert.equal(queued.length, 0, 'nothing while connected');

    watch.follow(status('disconnected'));
    tick(60_000);
    watch.follow(status('connecting'));
    await watch.notice([message(2)], status('connecting'));
    await watch.notice([message(3), message(4)], status('disconnected'));
    assert.equal(queued.length, 1, 'once per disconnection');
    const [event] = queued;
    assert.equal(eventProblem(event), null, 'a valid event of protocol v1');
    assert.deepEqual(event, {
      id: 'offline-0001', type: 'behaviour', kind: 'offline_use', at: LOST_AT + 60_000, console: 'whatsapp',
      account: 'Acme sales', details: { since: new Date(LOST_AT).toISOString(), console: 'whatsapp' },
    });

    watch.follow(status('connected'));
    watch.follow(status('disconnected'));
    await watch.notice([message(5)], status('disconnected'));
    assert.equal(queued.length, 2, 'a new disconnection is reported again');
  });

  it('says nothing while a new worker makes its first connection', async () => {
    const { watch, queued } = make();
    watch.follow(status('connecting'));
    await watch.notice([message(1)], status('connecting'));
    assert.equal(queued.length, 0);
  });

  it('says nothing for a device that is not enrolled, or for events it could not queue anyway', async () => {
    const { watch, queued } = make();
    watch.follow(status('not-enrolled', false));
    await watch.notice([message(1)], status('not-enrolled', false));
    watch.follow(status('disconnected'));
    await watch.notice([{ id: 'bad' }], status('disconnected'));
    await watch.notice('not a list', status('disconnected'));
    assert.equal(queued.length, 0);
  });

  it('remembers a report across workers, so a long outage is reported once', async () => {
    const store = memoryStore();
    const first = make(store);
    first.watch.follow(status('disconnected'));
    await first.watch.notice([message(1)], status('disconnected'));
    assert.equal(first.queued.length, 1);

    const second = make(store); // Chrome stopped the worker; a content script woke a new one
    second.watch.follow(status('connecting'));
    await second.watch.notice([message(2)], status('connecting'));
    assert.equal(second.queued.length, 0);
    second.watch.follow(status('connected'));
    await second.watch.notice([message(3)], status('connected'));
    assert.deepEqual(store.data.linkWatch, { lostAt: null, reported: false });
  });

  it('reports a loss it remembers from an earlier worker when the console is used', async () => {
    const { watch, queued } = make(memoryStore({ lostAt: LOST_AT - 3_600_000, reported: false }));
    watch.follow(status('connecting'));
    await watch.notice([message(1)], status('connecting'));
    assert.equal(queued.length, 1);
    assert.equal(queued[0].details.since, new Date(LOST_AT - 3_600_000).toISOString());
  });

  it('forgets a loss when the device is forgotten', async () => {
    const { watch, store } = make();
    watch.follow(status('disconnected'));
    await watch.follow(status('not-enrolled', false));
    assert.deepEqual(store.data.linkWatch, { lostAt: null, reported: false });
  });
});
