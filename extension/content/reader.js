// Reads the conversation from the page, as the profile describes it, and reports each message once:
// new messages, edits (the text of a known message changed) and deletions (the row shows the console's
// deleted marker, or, for consoles that take deleted messages out, it left the list between two
// messages that stayed). It reads through the masker, so it always sees the text the console wrote.

import { hasMarker, readField, safeClosest, safeMatches, safeQueryAll } from './profile.js';

const MAX_REMEMBERED = 20000; // message ids remembered per tab, so a re-rendered row is not reported again
const MAX_TEXT = 65536; // code points of a message the server stores (docs/protocol.md)

// The first `limit` code points: a cut never splits a surrogate pair, which the server would refuse.
export function cut(text, limit) {
  if (text.length <= limit) return text;
  return Array.from(text).slice(0, limit).join('');
}

export class Reader {
  /** profile: the console profile; masker: for original text; emit(event): hands an event on. */
  constructor({ profile, masker, emit, location = globalThis.location, document: doc = globalThis.document }) {
    this.profile = profile;
    this.messages = profile.messages;
    this.masker = masker;
    this.emit = emit;
    this.location = location;
    this.document = doc;
    this.nodeText = masker.nodeText;
    this.known = new Map(); // "conversation key\u0000message id" → { text, deleted }
    this.order = { key: null, ids: [] }; // the open conversation's message ids, in page order
  }

  context(extra = {}) {
    return { nodeText: this.nodeText, url: this.location.href, ...extra };
  }

  conversation() {
    const spec = this.profile.conversation ?? {};
    const title = readField(spec.title, this.document, this.context());
    const key = readField(spec.key, this.document, this.context({ title })) ?? title ?? this.location.pathname;
    const customer = readField(spec.customer, this.document, this.context({ title }));
    const conversation = { key: cut(key, 200) };
    if (title) conversation.title = cut(title, 200);
    if (customer) conversation.customer = cut(customer, 200);
    return conversation;
  }

  account() {
    const value = readField(this.profile.account, this.document, this.context());
    return value ? cut(value, 200) : null;
  }

  // Rows touched by these records (added, or holding a changed node), and the ids of rows taken out.
  rowsIn(records) {
    const rows = new Set();
    const removed = new Set();
    const rowsUnder = (node) => (safeMatches(node, this.messages.row) ? [node] : [])
      .concat(safeQueryAll(node, this.messages.row));
    for (const record of records) {
      const row = safeClosest(record.target, this.messages.row);
      if (row) rows.add(row);
      for (const node of record.addedNodes ?? []) if (node.nodeType === 1) rowsUnder(node).forEach((r) => rows.add(r));
      for (const node of record.removedNodes ?? []) {
        if (node.nodeType !== 1) continue;
        for (const gone of rowsUnder(node)) {
          const id = readField(this.messages.id, gone, this.context());
          if (id) removed.add(id);
        }
      }
    }
    return { rows, removed };
  }

  process(records) {
    const { rows, removed } = this.rowsIn(records);
    if (rows.size === 0 && removed.size === 0) return;
    const conversation = this.conversation();
    const account = this.account();
    for (const row of rows) if (row.isConnected) this.readRow(row, conversation, account);
    if (this.messages.deleted?.removed && this.messages.id) this.noticeRemovals(removed, conversation, account);
  }

  scan(root = this.document) {
    const conversation = this.conversation();
    const account = this.account();
    for (const row of safeQueryAll(root, this.messages.row)) this.readRow(row, conversation, account);
    if (this.messages.deleted?.removed && this.messages.id) this.noticeRemovals(new Set(), conversation, account);
  }

  direction(row) {
    const outgoing = this.messages.outgoing;
    if (typeof outgoing === 'string' && safeClosest(row, outgoing)) return 'out';
    return hasMarker(row, outgoing, this.nodeText) ? 'out' : 'in';
  }

  readRow(row, conversation, account) {
    const text = readField(this.messages.text, row, this.context()) ?? '';
    const deleted = hasMarker(row, this.messages.deleted, this.nodeText);
    const direction = this.direction(row);
    const sentAt = parseTime(readField(this.messages.time, row, this.context()));
    const id = readField(this.messages.id, row, this.context()) ?? stableId(direction, sentAt, text);
    const memoryKey = `${conversation.key}\u0000${id}`;
    const before = this.known.get(memoryKey);
    const common = { conversation, ...(account ? { account } : {}), message_id: cut(id, 200) };
    if (!before) {
      if (deleted) {
        this.remember(memoryKey, { text, deleted }); // first seen already deleted (history)
        return;
      }
      if (text === '') return; // a row still being built; its text comes in a later mutation
      this.remember(memoryKey, { text, deleted: false });
      this.emit({
        type: 'message', ...common, direction, text: cut(text, MAX_TEXT), ...(sentAt ? { sent_at: sentAt } : {}),
      });
      return;
    }
    if (deleted && !before.deleted) {
      this.remember(memoryKey, { text: before.text, deleted: true });
      this.emit({ type: 'message_deleted', ...common, text: cut(before.text, MAX_TEXT) });
    } else if (!deleted && text !== '' && text !== before.text) {
      // the console's edited marker is not required: some consoles re-render an edit without one
      this.remember(memoryKey, { text, deleted: false });
      this.emit({
        type: 'message_edited', ...common, text: cut(text, MAX_TEXT), previous_text: cut(before.text, MAX_TEXT),
      });
    }
  }

  // For consoles that take a deleted message out of the list: an id that left while the messages on
  // both sides of it stayed, in the same conversation, was deleted; rows leaving with a conversation
  // switch or from either end of the list (the console unloading what is far from view) were not.
  noticeRemovals(removed, conversation, account) {
    const previous = this.order;
    const rows = safeQueryAll(this.document, this.messages.row);
    const ids = rows.map((row) => readField(this.messages.id, row, this.context())).filter(Boolean);
    this.order = { key: conversation.key, ids };
    if (previous.key !== conversation.key || removed.size === 0) return;
    const present = new Set(ids);
    previous.ids.forEach((id, index) => {
      if (!removed.has(id) || present.has(id)) return;
      const before = previous.ids.slice(0, index).reverse().find((other) => !removed.has(other));
      const after = previous.ids.slice(index + 1).find((other) => !removed.has(other));
      if (!before || !after || !present.has(before) || !present.has(after)) return;
      const memoryKey = `${conversation.key}\u0000${id}`;
      const known = this.known.get(memoryKey);
      if (!known || known.deleted) return;
      this.remember(memoryKey, { text: known.text, deleted: true });
      this.emit({
        type: 'message_deleted', conversation, ...(account ? { account } : {}), message_id: cut(id, 200),
        text: cut(known.text, MAX_TEXT),
      });
    });
  }

  remember(key, value) {
    this.known.delete(key);
    this.known.set(key, value);
    if (this.known.size > MAX_REMEMBERED) this.known.delete(this.known.keys().next().value);
  }
}

// A time as milliseconds since 1970 when the console gives a full date ("2026-11-23T10:32" or an
// epoch); consoles that show only "10:32" give none, and the event's own time stands in.
function parseTime(value) {
  if (!value) return null;
  if (/^\d{10}$/.test(value)) return Number(value) * 1000;
  if (/^\d{13}$/.test(value)) return Number(value);
  if (!/\d{4}-\d{2}-\d{2}/.test(value)) return null;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? ms : null;
}

// An id for a row the console gives none: the same row re-rendered gets the same id.
export function stableId(direction, sentAt, text) {
  let h = 2166136261;
  const input = `${direction}\u0000${sentAt ?? ''}\u0000${text}`;
  for (let i = 0; i < input.length; i++) h = Math.imul(h ^ input.charCodeAt(i), 16777619);
  return `v-${(h >>> 0).toString(16)}-${input.length}`;
}
