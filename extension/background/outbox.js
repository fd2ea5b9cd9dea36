// The outbox: every event a content script hands over is written here before
// it is acknowledged, and deleted only once the server has answered for it.
// IndexedDB survives the service worker being stopped, the browser being
// closed and the server being away.
import { eventBytes } from '../shared/events.js';

const DB_NAME = 'veil-outbox';
const DB_VERSION = 1;
const STORE = 'events';
const BY_ID = 'by-id';

function promised(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

// An error a request does not prevent aborts its transaction, so `abort` is the one failure to hear.
function finished(transaction) {
  return new Promise((resolve, reject) => {
    transaction.oncomplete = () => resolve();
    transaction.onabort = () => reject(transaction.error ?? new DOMException('aborted', 'AbortError'));
  });
}

/**
 * Opens the outbox. Records are `{seq, id, bytes, event}`: `seq` comes from the
 * store's key generator, so reading in key order is the order of hand-off; a
 * unique index on `id` keeps an event handed over twice from being stored twice.
 * `indexedDB` is passed in so node's tests can use fake-indexeddb.
 */
export async function openOutbox({ indexedDB = globalThis.indexedDB, name = DB_NAME } = {}) {
  const request = indexedDB.open(name, DB_VERSION);
  request.onupgradeneeded = () => {
    const store = request.result.createObjectStore(STORE, { keyPath: 'seq', autoIncrement: true });
    store.createIndex(BY_ID, 'id', { unique: true });
  };
  const db = await promised(request);

  /** Stores events in order; resolves with how many were new once the transaction has committed. */
  async function add(events) {
    const transaction = db.transaction(STORE, 'readwrite');
    const done = finished(transaction);
    const store = transaction.objectStore(STORE);
    let added = 0;
    for (const event of events) {
      const put = store.add({ id: event.id, bytes: eventBytes(event), event });
      put.onsuccess = () => {
        added += 1;
      };
      put.onerror = (error) => {
        // Already queued: keep the transaction (and the rest of the hand-off) going.
        if (put.error?.name === 'ConstraintError') {
          error.preventDefault();
          error.stopPropagation();
        }
      };
    }
    await done;
    return added;
  }

  /** The oldest events, at most `max` of them and `maxBytes` in all (always at least one). */
  async function peekBatch(max, maxBytes) {
    const transaction = db.transaction(STORE, 'readonly');
    const done = finished(transaction);
    const batch = [];
    let bytes = 0;
    const cursor = transaction.objectStore(STORE).openCursor();
    cursor.onsuccess = () => {
      const at = cursor.result;
      if (!at) return;
      const record = at.value;
      if (batch.length > 0 && bytes + record.bytes > maxBytes) return;
      batch.push(record.event);
      bytes += record.bytes;
      if (batch.length < max) at.continue();
    };
    await done;
    return batch;
  }

  /** Deletes the events with these ids; ids not (or no longer) queued are ignored. */
  async function remove(ids) {
    const transaction = db.transaction(STORE, 'readwrite');
    const done = finished(transaction);
    const store = transaction.objectStore(STORE);
    const index = store.index(BY_ID);
    for (const id of new Set(ids)) {
      const key = index.getKey(id);
      key.onsuccess = () => {
        if (key.result !== undefined) store.delete(key.result);
      };
    }
    await done;
  }

  async function count() {
    return promised(db.transaction(STORE, 'readonly').objectStore(STORE).count());
  }

  async function clear() {
    const transaction = db.transaction(STORE, 'readwrite');
    const done = finished(transaction);
    transaction.objectStore(STORE).clear();
    await done;
  }

  return { add, peekBatch, remove, count, clear, close: () => db.close() };
}
