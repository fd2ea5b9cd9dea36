// The content-script core against a DOM (jsdom): masking, reading, the send guard, the outlet.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { JSDOM } from 'jsdom';
import { Engine } from '../../extension/engine/checker.js';
import { watchCopies } from '../../extension/content/behaviour.js';
import { Guard } from '../../extension/content/guard.js';
import { Masker } from '../../extension/content/masker.js';
import { Outlet } from '../../extension/content/outlet.js';
import { hasMarker, matchPatternToRegExp, profileForUrl, readField } from '../../extension/content/profile.js';
import { Reader, cut, stableId } from '../../extension/content/reader.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const VEIL = join(ROOT, '.venv', 'bin', 'veil');
const missing = existsSync(VEIL) ? false : `${VEIL} is missing: the payload is compiled by the Python side`;

const PROFILE = {
  id: 'test', name: 'Test', platform: 'web', matches: ['https://chat.example.com/*'],
  mask: { regions: ['#app'], names: ['.title', '.chat-name'] },
  conversation: { title: '.title', key: { selector: '#conv', attribute: 'data-key' } },
  messages: {
    row: '.row', id: { attribute: 'data-id' }, text: '.text', outgoing: '.out',
    deleted: { selector: '.recalled', text: ['This message was deleted'] },
  },
  composer: { input: '#composer', send: '#send', enter_sends: true },
};

let payload;
before(() => {
  if (missing) return;
  payload = JSON.parse(execFileSync(VEIL, ['rules', 'compile'], { cwd: ROOT, maxBuffer: 64 << 20 }).toString());
});

function page(body) {
  const dom = new JSDOM(`<!doctype html><html><body><div id="app">${body}</div></body></html>`, {
    url: 'https://chat.example.com/c/1',
  });
  return dom.window;
}

// Runs `change` and waits for the observer's microtask, as the browser does before painting.
async function mutate(window, masker, reader, change) {
  const records = [];
  const observer = new window.MutationObserver((list) => {
    records.push(...list);
    reader?.process(list);
    masker.process(list);
  });
  observer.observe(window.document.documentElement, {
    childList: true, subtree: true, characterData: true, attributes: true,
  });
  change();
  await new Promise((resolve) => setTimeout(resolve, 0));
  observer.disconnect();
  return records;
}

describe('profile', () => {
  it('turns Chrome match patterns into URL tests', () => {
    assert.ok(matchPatternToRegExp('https://web.whatsapp.com/*').test('https://web.whatsapp.com/'));
    assert.ok(!matchPatternToRegExp('https://web.whatsapp.com/*').test('https://web.whatsapp.com.evil.io/'));
    assert.ok(matchPatternToRegExp('*://*.example.com/chat/*').test('http://a.b.example.com/chat/x'));
    assert.ok(matchPatternToRegExp('http://127.0.0.1/*').test('http://127.0.0.1:5123/pages/x.html'));
    assert.equal(matchPatternToRegExp('not a pattern'), null);
    assert.equal(profileForUrl([PROFILE], 'https://chat.example.com/c/1#x').id, 'test');
    assert.equal(profileForUrl([PROFILE], 'https://other.example.com/'), null);
  });

  it('reads fields: text, attribute, pattern, url', () => {
    const window = page('<div id="conv" data-key="conv-42"><b class="title"> Ann </b></div>');
    const { document } = window;
    assert.equal(readField('.title', document), 'Ann');
    assert.equal(readField({ selector: '#conv', attribute: 'data-key', pattern: '-(\\d+)$' }, document), '42');
    assert.equal(readField({ from: 'url', pattern: '/c/(\\d+)' }, document, { url: window.location.href }), '1');
    assert.equal(readField('.nothing', document), null);
    assert.equal(readField('][ broken', document), null, 'a broken selector reads as nothing');
    assert.equal(readField(['.nothing', { selector: '#conv', attribute: 'data-key' }], document), 'conv-42',
      'a list of fields: the first with a value');
    const row = page('<div class="m"><span class="t">hello <i class="time">10:32 edited</i></span></div>');
    assert.equal(readField({ selector: '.t', exclude: '.time' }, row.document), 'hello');
    assert.ok(hasMarker(row.document.querySelector('.m'), { pattern: '^\\d{2}:\\d{2} edited$' }));
    assert.ok(!hasMarker(row.document.querySelector('.m'), { text: ['edited'] }));
  });
});

describe('Masker', { skip: missing }, () => {
  it('masks a number split over several inline elements, and its link and tooltip', () => {
    const window = page('<p class="text"><a href="tel:+8613812345678" title="+86 138 1234 5678">+86</a> '
      + '<span>138</span><span>1234</span>5678 ok</p>');
    const masker = new Masker({ engine: new Engine(payload), profile: PROFILE });
    masker.maskTree(window.document.documentElement);
    const p = window.document.querySelector('p');
    assert.equal(p.textContent, '+** *******5678 ok');
    assert.ok(!/1381234/.test(p.innerHTML.replace(/<[^>]+>/g, '')), p.innerHTML);
    assert.equal(p.querySelector('a').getAttribute('href'), 'tel:+*********5678');
    assert.ok(!p.querySelector('a').getAttribute('title').includes('1234'));
    assert.equal(masker.textOf(p), '+86 13812345678 ok', 'the original is still readable to the extension');
  });

  it('masks a number the console glued to a time with no space between', () => {
    const window = page('<div class="text"><span>Call me: +86 13812345678</span><span class="time">12:56</span></div>'
      + '<div class="text"><span>jane.doe@example.com</span><span>12:58</span></div>');
    const masker = new Masker({ engine: new Engine(payload), profile: PROFILE });
    masker.maskTree(window.document.documentElement);
    const [first, second] = window.document.querySelectorAll('.text');
    assert.equal(first.textContent, 'Call me: +** *******567812:56');
    assert.equal(second.textContent, '********@example.com12:58');
  });

  it('masks again when the console re-renders, and ignores its own writes', async () => {
    const window = page('<div class="row"><span class="text">hello</span></div>');
    const masker = new Masker({ engine: new Engine(payload), profile: PROFILE });
    const text = window.document.querySelector('.text');
    const records = await mutate(window, masker, null, () => {
      text.firstChild.nodeValue = '电话 13812345678';
    });
    assert.equal(text.textContent, '电话 *******5678');
    assert.ok(records.length >= 1);
    assert.equal(masker.masked, 1, 'the record of its own write was not masked again');
    await mutate(window, masker, null, () => {
      text.innerHTML = '电话 <b>13912345678</b>'; // rebuilt from the console's state
    });
    assert.equal(text.textContent, '电话 *******5678');
  });

  it('shows a customer named by their number under the pseudonym the server gives', async () => {
    const window = page('<div class="title">+86 138 1234 5678</div><div class="chat-name">Ann 13812345678</div>');
    const asked = [];
    const timers = [];
    let online = false;
    const masker = new Masker({
      engine: new Engine(payload), profile: PROFILE, setTimer: (fn) => timers.push(fn),
      askNames: async (identifiers) => {
        asked.push(identifiers);
        if (!online) throw new Error('no worker');
        return { ok: true, pseudonyms: { '+86 138 1234 5678': '客户-7F3AK9' } };
      },
    });
    masker.maskTree(window.document.documentElement);
    const title = window.document.querySelector('.title');
    assert.equal(title.textContent, '+** *** **** 5678', 'masked while the server has not answered');
    await timers.shift()(window.document);
    assert.deepEqual(asked, [['+86 138 1234 5678']]);
    assert.equal(title.textContent, '+** *** **** 5678', 'offline: still masked, never the number');
    online = true;
    masker.askedNames.clear(); // as after NAME_RETRY_MS
    masker.maskTree(window.document.documentElement);
    await timers.shift()();
    assert.equal(title.textContent, '客户-7F3AK9');
    assert.equal(masker.textOf(title), '+86 138 1234 5678', 'the extension still reads the original');
    assert.equal(window.document.querySelector('.chat-name').textContent, 'Ann *******5678', 'a name with more');
  });

  it('leaves the composer, our own panel and text outside the regions alone', () => {
    const dom = new JSDOM('<body><div id="app"><textarea id="composer">13812345678</textarea>'
      + '<div contenteditable="true">13812345678</div></div><div id="outside">13812345678</div></body>');
    const masker = new Masker({ engine: new Engine(payload), profile: PROFILE });
    masker.maskTree(dom.window.document.documentElement);
    assert.equal(dom.window.document.querySelector('#app div').textContent, '13812345678');
    assert.equal(dom.window.document.querySelector('#outside').textContent, '13812345678');
  });
});

describe('Reader', { skip: missing }, () => {
  it('reports new messages once, then edits and deletions with the last text', async () => {
    const window = page('<div id="conv" data-key="k1"><span class="title">Ann</span></div><div id="list">'
      + '<div class="row" data-id="m1"><span class="text">电话 13812345678</span></div></div>');
    global.document = window.document;
    const events = [];
    const masker = new Masker({ engine: new Engine(payload), profile: PROFILE });
    const reader = new Reader({ profile: PROFILE, masker, emit: (e) => events.push(e), location: window.location });
    reader.scan(window.document);
    masker.maskTree(window.document.documentElement);
    assert.deepEqual(events.map((e) => [e.type, e.message_id, e.direction, e.text, e.conversation.key]),
      [['message', 'm1', 'in', '电话 13812345678', 'k1']], 'the original text, read before masking');
    const list = window.document.querySelector('#list');
    await mutate(window, masker, reader, () => {
      list.innerHTML = '<div class="row" data-id="m1"><span class="text">电话 13812345678</span></div>'
        + '<div class="row out" data-id="m2"><span class="text">好的</span></div>';
    });
    assert.equal(events.length, 2, 're-rendering m1 reports nothing');
    assert.deepEqual([events[1].type, events[1].direction], ['message', 'out']);
    await mutate(window, masker, reader, () => {
      list.querySelector('[data-id=m2] .text').textContent = '好的，明天见';
    });
    assert.deepEqual([events[2].type, events[2].text, events[2].previous_text], ['message_edited', '好的，明天见', '好的']);
    await mutate(window, masker, reader, () => {
      list.querySelector('[data-id=m1]').innerHTML = '<span class="text">This message was deleted</span>';
    });
    assert.deepEqual([events[3].type, events[3].text], ['message_deleted', '电话 13812345678']);
    delete global.document;
  });

  it('notices a message taken out between two that stayed (consoles without a deleted marker)', async () => {
    const profile = { ...PROFILE, messages: { ...PROFILE.messages, deleted: { removed: true } } };
    const rows = ['m1', 'm2', 'm3'].map((id) => `<div class="row" data-id="${id}"><span class="text">t ${id}</span></div>`);
    const window = page(`<div id="conv" data-key="k1"></div><div id="list">${rows.join('')}</div>`);
    const events = [];
    const masker = new Masker({ engine: new Engine(payload), profile });
    const reader = new Reader({ profile, masker, emit: (e) => events.push(e), location: window.location,
      document: window.document });
    reader.scan(window.document);
    const list = window.document.querySelector('#list');
    await mutate(window, masker, reader, () => list.querySelector('[data-id=m2]').remove());
    await mutate(window, masker, reader, () => list.querySelector('[data-id=m3]').remove()); // the end: unloaded
    assert.deepEqual(events.filter((e) => e.type === 'message_deleted').map((e) => [e.message_id, e.text]),
      [['m2', 't m2']]);
  });

  it('cuts long fields by code point, never inside a surrogate pair', () => {
    assert.equal(cut('ab', 200), 'ab');
    const emoji = '😀'.repeat(150); // 300 UTF-16 units
    assert.equal(cut(emoji, 200), emoji, '150 code points fit');
    assert.equal(cut(`x${'😀'.repeat(250)}`, 200), `x${'😀'.repeat(199)}`);
    assert.ok(cut(`x${'😀'.repeat(250)}`, 200).isWellFormed());
  });

  it('makes a stable id for rows without one', () => {
    assert.equal(stableId('in', null, 'hi'), stableId('in', null, 'hi'));
    assert.notEqual(stableId('in', null, 'hi'), stableId('out', null, 'hi'));
  });
});

describe('Guard', { skip: missing }, () => {
  function setUp(text, { settings } = {}) {
    const window = page('<div id="conv" data-key="k1"></div><textarea id="composer"></textarea><button id="send">Send</button>');
    global.document = window.document;
    const composer = window.document.querySelector('#composer');
    composer.value = text;
    const events = [];
    const sent = [];
    window.document.querySelector('#send').addEventListener('click', () => sent.push(composer.value));
    composer.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey) sent.push(composer.value);
    });
    const engine = new Engine(settings ? { ...payload, settings } : payload);
    const masker = new Masker({ engine, profile: PROFILE });
    const reader = new Reader({ profile: PROFILE, masker, emit: () => {}, location: window.location });
    const t = (key, subs) => `${key}${subs ? `:${subs.join('|')}` : ''}`;
    const guard = new Guard({ engine, profile: PROFILE, reader, emit: (e) => events.push(e), t, window });
    guard.attach();
    const enter = (init = {}) => composer.dispatchEvent(new window.KeyboardEvent('keydown', {
      key: 'Enter', bubbles: true, cancelable: true, ...init,
    }));
    return { window, composer, events, sent, enter, guard };
  }

  it('stops a blocked message on Enter and on the send button, says why and reports it', () => {
    const { window, events, sent, enter } = setUp('加我微信 wxid_abc123 私下交易');
    enter();
    window.document.querySelector('#send').click();
    assert.deepEqual(sent, []);
    const panel = window.document.querySelector('veil-guard');
    assert.ok(panel, 'the panel is shown');
    assert.equal(events.length, 1, 'one attempt, one report');
    assert.equal(events[0].kind, 'send_blocked');
    assert.equal(events[0].text, '加我微信 wxid_abc123 私下交易');
    assert.equal(events[0].conversation.key, 'k1');
    delete global.document;
  });

  it('lets allowed text, Shift+Enter and IME composition through', () => {
    const { sent, enter } = setUp('您好，订单 20261123001 已发货');
    enter();
    assert.deepEqual(sent, ['您好，订单 20261123001 已发货']);
    const blocked = setUp('私下交易');
    blocked.enter({ shiftKey: true });
    blocked.enter({ isComposing: true });
    assert.equal(blocked.events.length, 0, 'Shift+Enter and Enter while composing are not sends');
    delete global.document;
  });

  it('sends a request for contact details and reports it', () => {
    const { sent, events, enter } = setUp('方便留个电话吗？');
    enter();
    assert.deepEqual(sent, ['方便留个电话吗？']);
    assert.deepEqual(events.map((e) => [e.kind, e.text]), [['contact_request', '方便留个电话吗？']]);
    delete global.document;
  });

  it('sends a warned message only with a reason, and reports the reason', () => {
    const settings = { ...payload.settings, contacts: { ...payload.settings.contacts, action: 'warn' } };
    const { composer, events, sent, enter, guard } = setUp('我的电话 13812345678', { settings });
    enter();
    assert.deepEqual(sent, [], 'not sent without a reason');
    assert.equal(guard.sendWithReason(composer, composer.value, guard.last.decision, 'no'), false, 'too short');
    assert.equal(guard.sendWithReason(composer, composer.value, guard.last.decision, '客户要求回电'), true);
    assert.deepEqual(sent, ['我的电话 13812345678']);
    assert.deepEqual(events.map((e) => [e.kind, e.reason]), [['send_warned', '客户要求回电']]);
    delete global.document;
  });
});

describe('bulk copy', () => {
  it('reports copying many rows of chat, not a word or two', () => {
    const rows = Array.from({ length: 8 }, (_, i) => `<div class="row" data-id="m${i}"><span class="text">消息 ${i}</span></div>`);
    const window = page(`<div id="conv" data-key="k1"></div><div id="list">${rows.join('')}</div>`);
    const { document } = window;
    const events = [];
    const reader = { conversation: () => ({ key: 'k1' }) };
    watchCopies({ document, reader, profile: PROFILE, emit: (e) => events.push(e) });
    const select = (from, to) => {
      const range = document.createRange();
      range.setStart(from, 0);
      range.setEnd(to, to.childNodes.length);
      document.getSelection().removeAllRanges();
      document.getSelection().addRange(range);
      document.dispatchEvent(new window.Event('copy', { bubbles: true }));
    };
    const all = document.querySelectorAll('.row');
    select(all[0].querySelector('.text'), all[0].querySelector('.text'));
    assert.equal(events.length, 0, 'one message copied is ordinary work');
    select(all[0], all[7]);
    assert.equal(events.length, 1);
    assert.equal(events[0].kind, 'bulk_copy');
    assert.ok(events[0].details.rows >= 5, JSON.stringify(events[0].details));
  });
});

describe('Outlet under a burst', () => {
  it('hands a long history over in large batches, losing nothing', async () => {
    const delays = [];
    const timers = [];
    const taken = [];
    const outlet = new Outlet({
      console: 'test', newId: (() => { let n = 0; return () => `id-${++n}`; })(),
      setTimer: (fn, ms) => { delays.push(ms); timers.push(fn); },
      send: async (events) => { taken.push(...events.map((e) => e.id)); return { ok: true }; },
    });
    for (let i = 0; i < 2500; i++) outlet.add({ type: 'behaviour', kind: 'bulk_copy' });
    assert.equal(delays[0], 150, 'a few events wait a moment to go together');
    while (timers.length) await timers.shift()();
    assert.equal(taken.length, 2500);
    assert.equal(new Set(taken).size, 2500);
    assert.ok(delays.slice(1).every((ms) => ms === 0), 'a full batch goes at once');
  });
});

describe('Outlet', () => {
  it('gives every event a device-made id and keeps what the worker did not take', async () => {
    const batches = [];
    let accept = false;
    const timers = [];
    let n = 0;
    const outlet = new Outlet({
      console: 'test', now: () => 1000, newId: () => `id-${++n}`,
      setTimer: (fn) => timers.push(fn),
      send: async (events) => {
        batches.push(events.map((e) => e.id));
        if (!accept) throw new Error('no worker');
        return { ok: true };
      },
    });
    outlet.add({ type: 'behaviour', kind: 'bulk_copy' });
    outlet.add({ type: 'behaviour', kind: 'bulk_copy' });
    await timers.shift()();
    assert.deepEqual(batches, [['id-1', 'id-2']]);
    assert.equal(outlet.pending.length, 2, 'kept after a failed hand-off');
    accept = true;
    await timers.shift()();
    assert.deepEqual(batches[1], ['id-1', 'id-2'], 'offered again with the same ids');
    assert.equal(outlet.pending.length, 0);
    assert.equal(timers.length, 0);
  });
});
