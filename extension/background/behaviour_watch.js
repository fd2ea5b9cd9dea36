// The service worker's half of the behaviour watch: what only the worker knows about the device. The
// server does the rest (docs/protocol.md, "Behaviour types"): new devices, missing heartbeats, and the
// removal link below, which Chrome opens once the extension is gone.
import { eventProblem, newEventId } from '../shared/events.js';

/**
 * Gives Chrome the enrolled device's removal link (chrome.runtime.setUninstallURL); with no enrolment,
 * or one from a server that issues no link, it clears it. Called at every start, after enrolment and
 * when the device is forgotten.
 */
export async function applyRemovalLink(enrolment, runtime = globalThis.chrome?.runtime, log = console) {
  try {
    await runtime.setUninstallURL(enrolment?.uninstallUrl ?? '');
  } catch (error) {
    log.warn('Veil: could not set the removal link', error);
  }
}

const LOST = new Set(['disconnected', 'refused']);

/**
 * Notices the console being used while the device has no link to the server: the first content
 * events after the link was lost queue one `offline_use` behaviour event, which goes out with the
 * outbox once the link is back. One per disconnection: the state is kept in `store`, because Chrome
 * stops the worker whenever it likes and a long outage outlives many workers. A worker that is still
 * making its first connection has not lost anything yet.
 *
 * `follow(status)` takes every connection status; `notice(events, status)` a content script's events
 * before they are queued; `queue(events)` is the stream's.
 */
export function createOfflineWatch({ store, queue, now = Date.now, newId = newEventId }) {
  let state = { lostAt: null, reported: false };
  // Everything runs in order, after the stored state is read.
  let pending = store.loadLinkWatch().then((stored) => {
    if (stored) state = { lostAt: stored.lostAt ?? null, reported: stored.reported === true };
  }).catch(() => {}); // unreadable: start as if nothing was lost

  function change(next) {
    state = next;
    return store.saveLinkWatch(state);
  }

  function followNow(status, at) {
    if (!status.enrolled || status.connection === 'connected') {
      if (state.lostAt !== null || state.reported) return change({ lostAt: null, reported: false });
    } else if (LOST.has(status.connection) && state.lostAt === null) {
      return change({ lostAt: at, reported: false });
    }
    return null;
  }

  async function noticeNow(events, status, at) {
    if (!status.enrolled || status.connection === 'connected' || state.lostAt === null || state.reported) return;
    const seen = Array.isArray(events) ? events.find((event) => eventProblem(event) === null) : null;
    if (!seen) return;
    await change({ ...state, reported: true });
    const event = {
      id: newId(), type: 'behaviour', kind: 'offline_use', at, console: seen.console,
      details: { since: new Date(state.lostAt).toISOString(), console: seen.console },
    };
    if (typeof seen.account === 'string') event.account = seen.account;
    await queue([event]);
  }

  function run(task) {
    pending = pending.then(task).catch((error) => console.error('Veil: the offline watch failed', error));
    return pending;
  }

  return {
    // The time is taken now: the task may wait behind others.
    follow(status) {
      const at = now();
      return run(() => followNow(status, at));
    },
    notice(events, status) {
      const at = now();
      return run(() => noticeNow(events, status, at));
    },
  };
}
