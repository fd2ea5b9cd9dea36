// Reads the conversation from the page, as the profile describes it, and reports each message once:
// new messages, edits (the text of a known message changed) and deletions (the row shows the console's
// deleted marker). It reads through the masker, so it always sees the text the console wrote.

import { hasMarker, readField, safeClosest, safeMatches, safeQuery, safeQueryAll } from './profile.js';

const MAX_REMEMBERED = 20000; // message ids remembered per tab, so a re-rendered row is not reported again

export class Reader {
  /** profile: the console profile; masker: for original text; emit(event): hands an event on. */
  constructor({ profile, masker, emit, location = globalThis.location }) {
    this.profile = profile;
    this.messages = profile.messages;
    this.masker = masker;
    this.emit = emit;
    this.location = location;
    this.known = new Map(); // "conversation key\u0000message id" → { text, deleted }
  }

  textOf = (element) => this.masker.textOf(element);

  conversation() {
    const spec = this.profile.conversation ?? {};
    const context = { textOf: this.textOf, url: this.location.href };
    const title = readField(spec.title, document, context);
    const key = readField(spec.key, document, { ...context, title }) ?? title ?? this.location.pathname;
    const customer = readField(spec.customer, document, { ...context, title });
    const conversation = { key: key.slice(0, 200) };
    if (title) conversation.title = title.slice(0, 200);
    if (customer) conversation.customer = customer.slice(0, 200);
    return conversation;
  }

  account() {
    const value = readField(this.profile.account, document, { textOf: this.textOf, url: this.location.href });
    return value ? value.slice(0, 200) : null;
  }

  // Rows touched by these records (added, or holding a changed node).
  rowsIn(records) {
    const rows = new Set();
    for (const record of records) {
      const row = safeClosest(record.target, this.messages.row);
      if (row) rows.add(row);
      for (const node of record.addedNodes ?? []) {
        if (node.nodeType !== 1) continue;
        if (safeMatches(node, this.messages.row)) rows.add(node);
        for (const inner of safeQueryAll(node, this.messages.row)) rows.add(inner);
      }
    }
    return rows;
  }

  process(records) {
    const rows = this.rowsIn(records);
    if (rows.size > 0) this.readRows(rows);
  }

  scan(root = document) {
    this.readRows(safeQueryAll(root, this.messages.row));
  }

  readRows(rows) {
    const conversation = this.conversation();
    const account = this.account();
    for (const row of rows) if (row.isConnected) this.readRow(row, conversation, account);
  }

  direction(row) {
    const outgoing = this.messages.outgoing;
    return safeMatches(row, outgoing) || safeQuery(row, outgoing) || safeClosest(row, outgoing) ? 'out' : 'in';
  }

  readRow(row, conversation, account) {
    const text = readField(this.messages.text, row, { textOf: this.textOf }) ?? '';
    const deleted = hasMarker(row, this.messages.deleted, this.textOf);
    const direction = this.direction(row);
    const sentAt = parseTime(readField(this.messages.time, row, { textOf: this.textOf }));
    const id = readField(this.messages.id, row, { textOf: this.textOf }) ?? stableId(direction, sentAt, text);
    const memoryKey = `${conversation.key}\u0000${id}`;
    const before = this.known.get(memoryKey);
    const common = { conversation, ...(account ? { account } : {}), message_id: id.slice(0, 200) };
    if (!before) {
      if (deleted) {
        // first seen already deleted (history): nothing to report but the marker
        this.remember(memoryKey, { text, deleted });
        return;
      }
      if (text === '') return; // a row still being built; its text comes in a later mutation
      this.remember(memoryKey, { text, deleted: false });
      this.emit({ type: 'message', ...common, direction, text, ...(sentAt ? { sent_at: sentAt } : {}) });
      return;
    }
    if (deleted && !before.deleted) {
      this.remember(memoryKey, { text: before.text, deleted: true });
      this.emit({ type: 'message_deleted', ...common, text: before.text });
    } else if (!deleted && text !== '' && text !== before.text) {
      this.remember(memoryKey, { text, deleted: false });
      // the console's edited marker is not required: some consoles re-render an edit without one
      this.emit({ type: 'message_edited', ...common, text, previous_text: before.text });
    }
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
