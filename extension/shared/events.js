// Event protocol v1: what a content script hands the service worker and the
// worker sends to the server (docs/protocol.md, `/agent` event `events`). The
// server checks the same rules again (backend/services/ingest.py), and
// tests/test_ingest.py checks that the two lists and limits below agree.
export const PROTOCOL_VERSION = 1;
export const MAX_BATCH_EVENTS = 100;
// A batch stops growing here; one event larger than this still goes alone.
export const MAX_BATCH_BYTES = 512 * 1024;
export const MAX_TEXT_CHARS = 65_536; // code points
export const MAX_NAME_CHARS = 200;
export const MAX_REASON_CHARS = 1_000;
export const MAX_DETAILS_BYTES = 4_096;
const EARLIEST_MS = Date.UTC(2000, 0, 1);
const LATEST_MS = Date.UTC(2100, 0, 1);
const EVENT_ID = /^[A-Za-z0-9_-]{8,64}$/;
const CONSOLE_ID = /^[a-z0-9_]{1,32}$/;

export const EVENT_TYPES = Object.freeze(['message', 'message_edited', 'message_deleted', 'behaviour']);
export const BEHAVIOUR_KINDS = Object.freeze([
  'send_blocked',
  'send_warned',
  'bulk_copy',
  'contact_request',
  'extension_disabled',
  'offline_use',
  'reveal_requested',
]);
const DIRECTIONS = ['in', 'out'];
const MESSAGE_TYPES = ['message', 'message_edited', 'message_deleted'];

/** A fresh event id, made on the device so a resend is recognised as the same event. */
export function newEventId() {
  return crypto.randomUUID();
}

class EventError extends Error {
  constructor(code, field) {
    super(`${code}: ${field}`);
    this.code = code;
    this.field = field;
  }
}

function codePoints(text) {
  return text.length - (text.match(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g)?.length ?? 0);
}

function checkString(value, field, { max, required = false, empty = false } = {}) {
  if (value === undefined || value === null) {
    if (required) throw new EventError('missing_field', field);
    return;
  }
  if (typeof value !== 'string') throw new EventError('wrong_type', field);
  // UTF-16 length bounds the code points from above and from below (at most two units each).
  if (value.length > max && (value.length > 2 * max || codePoints(value) > max)) {
    throw new EventError('too_long', field);
  }
  if (!value.isWellFormed() || value.includes('\0')) throw new EventError('invalid_text', field);
  if (value === '' && !empty) throw new EventError(required ? 'missing_field' : 'invalid_value', field);
}

function checkTime(value, field, required) {
  if (value === undefined || value === null) {
    if (required) throw new EventError('missing_field', field);
    return;
  }
  if (!Number.isInteger(value)) throw new EventError('wrong_type', field);
  if (value < EARLIEST_MS || value > LATEST_MS) throw new EventError('invalid_value', field);
}

function isObject(value) {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkDetails(details) {
  if (!isObject(details)) throw new EventError('wrong_type', 'details');
  const json = JSON.stringify(details);
  if (json === undefined || new TextEncoder().encode(json).length > MAX_DETAILS_BYTES) {
    throw new EventError('too_long', 'details');
  }
}

function checkEvent(event) {
  if (!isObject(event)) throw new EventError('not_an_object', null);
  if (typeof event.id !== 'string' || !EVENT_ID.test(event.id)) throw new EventError('invalid_id', 'id');
  if (!EVENT_TYPES.includes(event.type)) throw new EventError('unknown_type', 'type');
  checkTime(event.at, 'at', true);
  checkString(event.console, 'console', { max: 32, required: true });
  if (!CONSOLE_ID.test(event.console)) throw new EventError('invalid_value', 'console');
  checkString(event.account, 'account', { max: MAX_NAME_CHARS, empty: true });

  const conversation = event.conversation;
  if (conversation === undefined || conversation === null) {
    if (MESSAGE_TYPES.includes(event.type)) throw new EventError('missing_field', 'conversation');
  } else {
    if (!isObject(conversation)) throw new EventError('wrong_type', 'conversation');
    checkString(conversation.key, 'conversation.key', { max: MAX_NAME_CHARS, required: true });
    checkString(conversation.title, 'conversation.title', { max: MAX_NAME_CHARS, empty: true });
    checkString(conversation.customer, 'conversation.customer', { max: MAX_NAME_CHARS });
  }

  if (event.type === 'behaviour') {
    if (!BEHAVIOUR_KINDS.includes(event.kind)) {
      throw new EventError(event.kind === undefined ? 'missing_field' : 'invalid_value', 'kind');
    }
    checkString(event.text, 'text', { max: MAX_TEXT_CHARS, empty: true });
    checkString(event.rule, 'rule', { max: MAX_NAME_CHARS, empty: true });
    checkString(event.reason, 'reason', { max: MAX_REASON_CHARS, empty: true });
    if (event.details !== undefined && event.details !== null) checkDetails(event.details);
    return;
  }
  checkString(event.message_id, 'message_id', { max: MAX_NAME_CHARS, required: true });
  if (event.type === 'message') {
    if (!DIRECTIONS.includes(event.direction)) {
      throw new EventError(event.direction === undefined ? 'missing_field' : 'invalid_value', 'direction');
    }
    checkString(event.text, 'text', { max: MAX_TEXT_CHARS, required: true, empty: true });
    checkTime(event.sent_at, 'sent_at', false);
    // optional: the supervisor reply (intervention) this outgoing message is; the server checks it
    if (event.intervention_id !== undefined && event.intervention_id !== null) {
      if (!Number.isInteger(event.intervention_id)) throw new EventError('wrong_type', 'intervention_id');
      if (event.intervention_id < 1 || event.intervention_id >= 2 ** 31 || event.direction !== 'out') {
        throw new EventError('invalid_value', 'intervention_id');
      }
    }
  } else if (event.type === 'message_edited') {
    checkString(event.text, 'text', { max: MAX_TEXT_CHARS, required: true, empty: true });
    checkString(event.previous_text, 'previous_text', { max: MAX_TEXT_CHARS, empty: true });
  } else {
    checkString(event.text, 'text', { max: MAX_TEXT_CHARS, empty: true });
  }
}

/**
 * Checks one event's shape before it is queued.
 * @returns {null | {code: string, field: string|null}} null when the event may be sent
 */
export function eventProblem(event) {
  try {
    checkEvent(event);
    return null;
  } catch (error) {
    if (!(error instanceof EventError)) throw error;
    return { code: error.code, field: error.field };
  }
}

/** The size an event adds to a batch, in UTF-8 bytes of its JSON. */
export function eventBytes(event) {
  return new TextEncoder().encode(JSON.stringify(event)).length;
}
