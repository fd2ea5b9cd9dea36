import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CONTENT_SCRIPT_ID, consoleMatches, registerConsoleScripts } from '../../extension/background/consoles.js';

function fakeScripting() {
  const registered = new Map();
  const calls = [];
  return {
    calls,
    registered,
    async getRegisteredContentScripts({ ids }) {
      return ids.filter((id) => registered.has(id)).map((id) => registered.get(id));
    },
    async registerContentScripts([script]) {
      calls.push('register');
      registered.set(script.id, script);
    },
    async updateContentScripts([script]) {
      calls.push('update');
      registered.set(script.id, script);
    },
    async unregisterContentScripts({ ids }) {
      calls.push('unregister');
      for (const id of ids) registered.delete(id);
    },
  };
}

describe('console content script registration', () => {
  it('collects valid patterns once and drops broken ones', () => {
    assert.deepEqual(consoleMatches([
      { matches: ['https://web.whatsapp.com/*', 'nonsense'] },
      { matches: ['https://web.whatsapp.com/*', 'http://127.0.0.1/*'] },
      { matches: [] }, {},
    ]), ['http://127.0.0.1/*', 'https://web.whatsapp.com/*']);
  });

  it('registers, updates only on change, and unregisters when no profile matches anything', async () => {
    const scripting = fakeScripting();
    await registerConsoleScripts([{ matches: ['https://web.whatsapp.com/*'] }], scripting);
    const script = scripting.registered.get(CONTENT_SCRIPT_ID);
    assert.equal(script.runAt, 'document_start');
    assert.deepEqual(script.js, ['content/veil.js']);
    assert.deepEqual(script.css, ['content/veil.css']);
    await registerConsoleScripts([{ matches: ['https://web.whatsapp.com/*'] }], scripting);
    await registerConsoleScripts([{ matches: ['https://web.whatsapp.com/*', 'https://crm.example.com/*'] }], scripting);
    assert.deepEqual(scripting.registered.get(CONTENT_SCRIPT_ID).matches,
      ['https://crm.example.com/*', 'https://web.whatsapp.com/*']);
    await registerConsoleScripts([{ matches: [] }], scripting);
    assert.deepEqual(scripting.calls, ['register', 'update', 'unregister']);
  });
});
