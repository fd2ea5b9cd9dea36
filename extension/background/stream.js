import { reconnectDelay } from './backoff.js';
import { MAX_BATCH_BYTES, MAX_BATCH_EVENTS, PROTOCOL_VERSION, eventProblem } from '../shared/events.js';

export const ACK_TIMEOUT_MS = 15_000;
// A content script hands over what it has seen since its last hand-off; more than this is a bug.
export const MAX_HANDOFF_EVENTS = 1_000;
// However long the server asks a device to wait, it tries again within this.
const MAX_WAIT_MS = 10 * 60_000;

/**
 * The event stream: content scripts' events go into the outbox, and from
 * there to the server's /agent `events` in order, one batch in flight at a
 * time. An event leaves the outbox only when the server has acknowledged it
 * (stored now or before) or refused it for good; anything else is sent again,
 * so a lost acknowledgement, a dropped link or a stopped worker loses nothing.
 * `outbox` may be a promise (the worker opens IndexedDB without top-level await).
 */
export function createStream({ outbox, onCount = () => {}, timers = globalThis, random = Math.random,
  log = console }) {
  let socket = null;
  let sending = false;
  let waitTimer = null;
  let failures = 0;
  let link = 0; // bumped on every attach and detach, so an answer on an old link is ignored

  async function publishCount() {
    try {
      onCount(await (await outbox).count());
    } catch (error) {
      log.warn('Veil: could not count the outbox', error);
    }
  }

  function clearWait() {
    timers.clearTimeout(waitTimer);
    waitTimer = null;
  }

  function waitThenPump(ms) {
    clearWait();
    waitTimer = timers.setTimeout(() => {
      waitTimer = null;
      pump();
    }, Math.min(ms, MAX_WAIT_MS));
  }

  function backOff() {
    waitThenPump(reconnectDelay(failures++, random));
  }

  function emitBatch(current, events) {
    return new Promise((resolve) => {
      current.timeout(ACK_TIMEOUT_MS).emit('events', { v: PROTOCOL_VERSION, events }, (error, ack) => {
        resolve({ error, ack });
      });
    });
  }

  async function settle(events, ack) {
    const sent = new Set(events.map((event) => event.id));
    const done = (Array.isArray(ack.acked) ? ack.acked : []).filter((id) => sent.has(id));
    for (const refusal of Array.isArray(ack.errors) ? ack.errors : []) {
      if (!sent.has(refusal?.id)) continue;
      // It will never be stored: dropped from the outbox, but not silently.
      log.warn('Veil: the server refused event %s (%s %s): %s', refusal.id, refusal.error,
        refusal.field ?? '', refusal.message);
      done.push(refusal.id);
    }
    if (done.length === 0) return false;
    await (await outbox).remove(done);
    return true;
  }

  /** Sends the oldest batch if connected and idle; calls itself again until the outbox is empty. */
  async function pump() {
    if (!socket || sending || waitTimer) return;
    sending = true;
    const current = socket;
    const generation = link;
    try {
      const events = await (await outbox).peekBatch(MAX_BATCH_EVENTS, MAX_BATCH_BYTES);
      if (generation !== link) return;
      if (events.length === 0) {
        sending = false;
        await publishCount();
        return;
      }
      const { error, ack } = await emitBatch(current, events);
      if (generation !== link) return;
      if (error || !ack) {
        sending = false;
        backOff(); // no answer in time, or the link dropped: the same batch goes again
        return;
      }
      if (ack.ok !== true) {
        sending = false;
        const code = ack.error?.code;
        if (code === 'rate_limited') {
          waitThenPump(Math.max(1, Number(ack.error.details?.retry_after) || 1) * 1000);
        } else if (code !== 'unauthorized') {
          // unauthorized: the server drops the link, and the connection decides what comes next
          log.warn('Veil: the server refused a batch (%s): %s', code, ack.error?.message ?? '');
          backOff();
        }
        return;
      }
      const progressed = await settle(events, ack);
      if (generation !== link) return;
      sending = false;
      await publishCount();
      if (!progressed) {
        backOff(); // an answer about none of the batch: do not hammer the server with it
        return;
      }
      failures = 0;
      pump();
    } catch (error) {
      log.error('Veil: sending events failed', error);
      if (generation === link) {
        sending = false;
        backOff();
      }
    }
  }

  /** A connected socket: start sending what is queued. */
  function attach(current) {
    socket = current;
    link += 1;
    sending = false;
    failures = 0;
    clearWait();
    return pump();
  }

  /** The link is gone: stop; the outbox keeps everything for the next `attach`. */
  function detach() {
    socket = null;
    link += 1;
    sending = false;
    clearWait();
  }

  /**
   * Takes a content script's events: each is checked, the valid ones are
   * written to the outbox, and the answer comes once IndexedDB has committed.
   * An invalid event is not queued and is named in `errors`.
   */
  async function queue(events) {
    if (!Array.isArray(events) || events.length > MAX_HANDOFF_EVENTS) {
      return { ok: false, error: { code: 'invalid_events' } };
    }
    const valid = [];
    const errors = [];
    events.forEach((event, index) => {
      const problem = eventProblem(event);
      if (problem) errors.push({ index, id: typeof event?.id === 'string' ? event.id : null, ...problem });
      else valid.push(event);
    });
    const queued = valid.length ? await (await outbox).add(valid) : 0;
    await publishCount();
    pump();
    return { ok: true, queued, errors };
  }

  /** Forgets every queued event (the device itself is being forgotten). */
  async function clear() {
    await (await outbox).clear();
    await publishCount();
  }

  return { attach, detach, queue, pump, clear, publishCount };
}
