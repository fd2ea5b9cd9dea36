// Revealing a masked identifier (content/reveal.js, the masker's reveal, background/reveals.js) against a
// jsdom page, a fake worker and a fake socket. The original must never leave the page: only its hash.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, webcrypto } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { JSDOM } from 'jsdom';
import { createReveals } from '../../extension/background/reveals.js';
import { Masker } from '../../extension/content/masker.js';
import { Reader } from '../../extension/content/reader.js';
import { REVEAL_MS, Reveals, spanHash } from '../../extension/content/reveal.js';
import { Engine } from '../../extension/engine/checker.js';
import { MESSAGES } from '../../extension/shared/messages.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const VEIL = join(ROOT, '.venv', 'bin', 'veil');
const missing = existsSync(VEIL) ? false : `${VEIL} is missing: the payload is compiled by the Python side`;
const PHONE = '13812345678';
const OTHER = '13998765432';
const PROFILE = {
  id: 'test', name: 'Test', platform: 'web', matches: ['https://chat.example.com/*'],
  mask: { regions: ['#app'] },
  conversation: { title: '.title', key: { selector: '#conv', attribute: 'data-key' } },
  messages: { row: '.row', id: { attribute: 'data-id' }, text: '.text' },
  account: { selector: '#me' },
};

let payload;
before(() => {
  if (missing) return;
  payload = JSON.parse(execFileSync(VEIL, ['rules', 'compile'], { cwd: ROOT, maxBuffer: 64 << 20 }).toString());
});

function setup({ answer = { ok: true } } = {}) {
  const dom = new JSDOM(`<!doctype html><html><body><div id="app"><div id="conv" data-key="chat-1"></div>
    <div class="title">Maria</div>
    <div class="row" data-id="m1"><span class="text">call me at ${PHONE} or ${OTHER}</span></div>
    </div></body></html>`, { url: 'https://chat.example.com/c/1' });
  const { window } = dom;
  const masker = new Masker({ engine: new Engine(payload), profile: PROFILE });
  const reader = new Reader({ profile: PROFILE, masker, emit: () => {}, location: window.location });
  masker.maskTree(window.document.documentElement);
  const asked = [];
  const timers = [];
  const reveals = new Reveals({
    document: window.document, masker, reader, profile: PROFILE, subtle: webcrypto.subtle,
    ask: async (message) => {
      asked.push(message);
      return typeof answer === 'function' ? answer(message) : answer;
    },
    setTimer: (fn, ms) => timers.push({ fn, ms }) - 1,
    clearTimer: (id) => { timers[id] = null; },
  });
  reveals.attach();
  const text = window.document.querySelector('.text');
  return { window, masker, reader, reveals, asked, timers, text };
}

// A click on the text node (jsdom has no caret API: the first identifier of the clicked element).
function clickOn(window, element) {
  element.dispatchEvent(new window.MouseEvent('click', { bubbles: true, clientX: 10, clientY: 10 }));
}

describe('revealing in the page', { skip: missing }, () => {
  it('masks first, then shows the original only after the server says yes, for 30 seconds', async () => {
    const { window, reader, reveals, asked, timers, text } = setup();
    assert.ok(!text.textContent.includes(PHONE), 'masked to begin with');
    clickOn(window, text);
    assert.ok(reveals.popover, 'a click on a masked identifier offers to reveal it');
    assert.equal(window.document.querySelector('veil-reveal').getAttribute('data-veil-ui'), '');
    const line = await reveals.request(PHONE);
    assert.match(line, /30/);
    assert.equal(asked.length, 1);
    const [message] = asked;
    assert.equal(message.type, MESSAGES.CONTENT_TO_SW_REVEAL);
    assert.deepEqual(message.chat, { console: 'test', key: reader.conversation().key });
    assert.equal(message.spanHash, createHash('sha256').update(PHONE).digest('hex'));
    assert.ok(!JSON.stringify(message).includes(PHONE), 'the original never leaves the page');
    assert.ok(text.textContent.includes(PHONE), 'shown');
    assert.ok(!text.textContent.includes(OTHER), 'only the identifier asked for');
    assert.equal(timers.at(-1).ms, REVEAL_MS);
    timers.at(-1).fn();
    assert.ok(!text.textContent.includes(PHONE), 'masked again after 30 seconds');
  });

  it('stays masked without a restore key and says why', async () => {
    const { reveals, text } = setup({ answer: { ok: false, error: { code: 'no_grant', message: 'x' } } });
    const line = await reveals.request(PHONE);
    assert.match(line, /restore key/);
    assert.ok(!text.textContent.includes(PHONE));
  });

  it('stays masked when the worker cannot be reached', async () => {
    const { reveals, text } = setup({ answer: () => { throw new Error('no worker'); } });
    assert.match(await reveals.request(PHONE), /server/);
    assert.ok(!text.textContent.includes(PHONE));
  });

  it('masks everything again at once when the grants change', async () => {
    const { reveals, text, masker } = setup();
    await reveals.request(PHONE);
    assert.ok(text.textContent.includes(PHONE));
    reveals.concealAll();
    assert.ok(!text.textContent.includes(PHONE));
    assert.equal(masker.revealed.size, 0);
  });

  it('reads the console through the reveal: the reader still sees the original', async () => {
    const { reveals, masker, text } = setup();
    await reveals.request(PHONE);
    assert.ok(masker.textOf(text).includes(PHONE) && masker.textOf(text).includes(OTHER));
  });

  it('offers nothing for text without a masked identifier', () => {
    const { window, reveals } = setup();
    clickOn(window, window.document.querySelector('.title'));
    assert.equal(reveals.popover, null);
  });

  it('hashes UTF-8 as the server expects', async () => {
    assert.equal(await spanHash('客户 13812345678', webcrypto.subtle),
      createHash('sha256').update('客户 13812345678', 'utf8').digest('hex'));
  });
});

describe('the worker forwards reveals', () => {
  function fakeSocket(reply) {
    const handlers = new Map();
    const sent = [];
    return {
      connected: true, sent, handlers,
      on: (name, fn) => handlers.set(name, fn),
      off: (name) => handlers.delete(name),
      timeout: () => ({ emitWithAck: async (event, data) => { sent.push([event, data]); return reply; } }),
    };
  }

  it('sends only the chat fields and the hash, and refuses a bad hash locally', async () => {
    let notified = 0;
    const reveals = createReveals({ notifyTabs: () => { notified += 1; } });
    const socket = fakeSocket({ ok: true });
    reveals.attach(socket);
    const hash = 'a'.repeat(64);
    assert.deepEqual(await reveals.reveal({ console: 'c', key: 'k', extra: PHONE, customer: 5 }, hash), { ok: true });
    assert.deepEqual(socket.sent, [['reveal', { chat: { console: 'c', key: 'k' }, span_hash: hash }]]);
    assert.equal((await reveals.reveal({ console: 'c', key: 'k' }, PHONE)).error.code, 'invalid_value');
    socket.handlers.get('grants_changed')({ grant_id: 1, kind: 'restore' });
    assert.equal(notified, 1, 'grants_changed reaches the tabs');
    reveals.detach();
    assert.equal(notified, 2, 'a dropped link hides what was revealed too');
    assert.equal((await reveals.reveal({ console: 'c', key: 'k' }, hash)).error.code, 'offline');
  });
});
