import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BEHAVIOUR_KINDS, MAX_TEXT_CHARS, eventBytes, eventProblem, newEventId } from '../../extension/shared/events.js';

const AT = Date.UTC(2026, 10, 23);
const message = (fields = {}) => ({
  id: newEventId(), type: 'message', at: AT, console: 'whatsapp', account: 'Shop 1',
  conversation: { key: 'chat-1', title: 'Mr Wang', customer: '+86 139 0000 1111' },
  message_id: 'row-1', direction: 'out', text: 'hello', ...fields,
});

describe('event protocol v1 in the extension', () => {
  it('accepts every kind of event the content script makes', () => {
    assert.equal(eventProblem(message()), null);
    assert.equal(eventProblem(message({ sent_at: AT - 5, account: undefined })), null);
    assert.equal(eventProblem({ ...message(), type: 'message_edited', text: 'v2', previous_text: 'v1' }), null);
    assert.equal(eventProblem({ ...message(), type: 'message_deleted', text: undefined }), null);
    for (const kind of BEHAVIOUR_KINDS) {
      assert.equal(eventProblem({ id: newEventId(), type: 'behaviour', at: AT, console: 'generic', kind,
        reason: 'customer asked', details: { chars: 900, rows: 7 } }), null, kind);
    }
  });

  it('counts text in code points, as the server does', () => {
    assert.equal(eventProblem(message({ text: '𝄞'.repeat(MAX_TEXT_CHARS) })), null);
    assert.deepEqual(eventProblem(message({ text: 'x'.repeat(MAX_TEXT_CHARS + 1) })),
      { code: 'too_long', field: 'text' });
  });

  for (const [name, event, code, field] of [
    ['short id', message({ id: 'abc' }), 'invalid_id', 'id'],
    ['unknown type', message({ type: 'message_forwarded' }), 'unknown_type', 'type'],
    ['time in seconds', message({ at: Math.floor(AT / 1000) }), 'invalid_value', 'at'],
    ['time as text', message({ at: '2026-11-23' }), 'wrong_type', 'at'],
    ['console', message({ console: 'WhatsApp Web' }), 'invalid_value', 'console'],
    ['no conversation', message({ conversation: undefined }), 'missing_field', 'conversation'],
    ['no key', message({ conversation: { title: 'x' } }), 'missing_field', 'conversation.key'],
    ['lone surrogate', message({ text: 'a\uD800b' }), 'invalid_text', 'text'],
    ['NUL', message({ text: 'a\u0000b' }), 'invalid_text', 'text'],
    ['direction', message({ direction: 'up' }), 'invalid_value', 'direction'],
    ['unknown behaviour', { id: newEventId(), type: 'behaviour', at: AT, console: 'x', kind: 'nap' },
      'invalid_value', 'kind'],
    ['details too big', { id: newEventId(), type: 'behaviour', at: AT, console: 'x', kind: 'bulk_copy',
      details: { blob: 'x'.repeat(5000) } }, 'too_long', 'details'],
  ]) {
    it(`refuses: ${name}`, () => assert.deepEqual(eventProblem(event), { code, field }));
  }

  it('measures an event as the UTF-8 of its JSON', () => {
    const event = message({ text: '你好' });
    assert.equal(eventBytes(event), new TextEncoder().encode(JSON.stringify(event)).length);
  });
});
