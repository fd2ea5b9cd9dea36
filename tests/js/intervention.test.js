// Supervisor replies in the console (content/intervention.js) against a jsdom page that behaves like a
// chat app (a draft kept from `input` events, a send button), and the worker's half
// (background/interventions.js) against a fake socket.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import { JSDOM } from 'jsdom';
import { createInterventions } from '../../extension/background/interventions.js';
import { Interventions, insertText, sameWords } from '../../extension/content/intervention.js';
import { eventProblem } from '../../extension/shared/events.js';
import { MESSAGES } from '../../extension/shared/messages.js';

const PROFILE = {
  id: 'whatsapp', platform: 'whatsapp',
  composer: { input: '#composer', send: '#send', enter_sends: true },
};
const HOUR = 3_600_000;
const NOW = 1_790_000_000_000;

// A console: the app's draft follows `input` events, and sending posts the draft and empties the box.
function consolePage({ textarea = false } = {}) {
  const field = textarea ? '<textarea id="composer"></textarea>' : '<div id="composer" contenteditable="true"></div>';
  const dom = new JSDOM(`<!doctype html><html><body><main>${field}<button id="send">Send</button></main></body></html>`,
    { url: 'https://web.whatsapp.com/' });
  const { window } = dom;
  const composer = window.document.getElementById('composer');
  const app = { draft: '', sent: [] };
  composer.addEventListener('input', () => {
    app.draft = textarea ? composer.value : composer.textContent;
  });
  window.document.getElementById('send').addEventListener('click', () => {
    if (!app.draft.trim()) return;
    app.sent.push(app.draft);
    app.draft = '';
    if (textarea) composer.value = '';
    else composer.textContent = '';
  });
  return { window, composer, app };
}

function reply(id, conversationId, text, fields = {}) {
  return {
    id, text, expiresAt: NOW + HOUR,
    conversation: { id: conversationId, platform: 'whatsapp', account: '', pseudonym: `客户-${id}AAAAA` }, ...fields,
  };
}

// The worker as the content script sees it: runtime messages answered from this fake.
function fakeWorker({ replies, chats = { 'k-1': 7 }, claim = () => ({ ok: true, status: 'delivered', claimed: true }) }) {
  const reports = [];
  const asked = [];
  const ask = async (message) => {
    asked.push(message);
    if (message.type === MESSAGES.CONTENT_TO_SW_INTERVENTIONS) return { ok: true, interventions: replies };
    if (message.type === MESSAGES.CONTENT_TO_SW_RESOLVE_CHATS) {
      return { ok: true, conversation_ids: message.chats.map((c) => chats[c.key] ?? null) };
    }
    if (message.type === MESSAGES.CONTENT_TO_SW_INTERVENTION_STATUS) {
      reports.push([message.id, message.status, message.error]);
      return message.status === 'sending' ? claim(message) : { ok: true, status: message.status };
    }
    throw new Error(`unexpected ${message.type}`);
  };
  return { ask, reports, asked };
}

function setup({ replies, chat = { key: 'k-1', customer: '8613800138000' }, textarea = false, worker = {} }) {
  const page = consolePage({ textarea });
  const timers = [];
  const open = { ...chat };
  const reader = { conversation: () => ({ ...open }), account: () => null };
  const guard = { allowOnce: null, last: { text: 'old' } };
  const fake = fakeWorker({ replies, ...worker });
  const interventions = new Interventions({
    profile: PROFILE, reader, guard, ask: fake.ask, window: page.window, now: () => NOW,
    t: (key, substitutions) => `${key}${substitutions ? `:${substitutions.join(',')}` : ''}`,
    setTimer: (fn, ms) => timers.push({ fn, ms }),
  });
  const settle = async () => {
    for (const timer of timers.splice(0).filter((t) => t.ms > 1000)) await timer.fn();
  };
  return { ...page, interventions, reader, open, guard, fake, timers, settle };
}

function noticeText(window) {
  // the notice sits in a closed shadow root: its text is only reachable through the object itself
  return window.document.querySelector('veil-intervention') ? 'shown' : null;
}

describe('sameWords', () => {
  it('ignores how a console trims or wraps the text, not what it says', () => {
    assert.ok(sameWords('您好，我是主管\n', '您好，我是主管'));
    assert.ok(sameWords('a  b\nc', 'a b c'));
    assert.ok(!sameWords('a b', 'a c'));
  });
});

describe('insertText', () => {
  it('fills a contenteditable and the app hears it', () => {
    const { window, composer, app } = consolePage();
    insertText(composer, '您好，马上为您处理', window);
    assert.equal(composer.textContent, '您好，马上为您处理');
    assert.equal(app.draft, '您好，马上为您处理');
  });

  it('fills a textarea through its value setter and an input event', () => {
    const { window, composer, app } = consolePage({ textarea: true });
    insertText(composer, 'hello', window);
    assert.equal(composer.value, 'hello');
    assert.equal(app.draft, 'hello');
  });
});

describe('Interventions in the console', () => {
  it('sends the reply in its own chat, lets it past the guard and reports it', async () => {
    const s = setup({ replies: [reply(3, 7, '您好，我是主管，马上处理')] });
    await s.interventions.refresh();
    await s.interventions.check();
    assert.deepEqual(s.app.sent, ['您好，我是主管，马上处理']);
    assert.equal(s.guard.allowOnce, '您好，我是主管，马上处理');
    assert.equal(s.guard.last, null);
    const resolve = s.fake.asked.find((m) => m.type === MESSAGES.CONTENT_TO_SW_RESOLVE_CHATS);
    assert.deepEqual(resolve.chats, [{ console: 'whatsapp', key: 'k-1', customer: '8613800138000' }]);
    await s.settle();
    assert.deepEqual(s.fake.reports, [[3, 'sending', undefined], [3, 'sent', undefined]]);
    // nothing more to do: a second look sends nothing again
    await s.interventions.check();
    assert.equal(s.app.sent.length, 1);
  });

  it('tags the sent row once, in that chat, with the same words', async () => {
    const s = setup({ replies: [reply(3, 7, 'on my way')] });
    await s.interventions.refresh();
    await s.interventions.check();
    const row = { type: 'message', direction: 'out', conversation: { key: 'k-1' }, text: 'on my way ' };
    assert.equal(s.interventions.tag({ ...row, direction: 'in' }).intervention_id, undefined);
    assert.equal(s.interventions.tag({ ...row, conversation: { key: 'k-2' } }).intervention_id, undefined);
    assert.equal(s.interventions.tag({ ...row, text: 'other' }).intervention_id, undefined);
    const tagged = s.interventions.tag(row);
    assert.equal(tagged.intervention_id, 3);
    assert.equal(eventProblem({ ...tagged, id: 'event-0001', at: NOW, console: 'whatsapp', message_id: 'r1' }), null);
    assert.equal(s.interventions.tag(row).intervention_id, undefined, 'the same words later are the agent’s');
  });

  it('never types into another chat: it waits, tells the agent, and sends once the chat is open', async () => {
    const s = setup({ replies: [reply(3, 7, 'hello')], chat: { key: 'k-2', customer: '8613900000000' } });
    await s.interventions.refresh();
    await s.interventions.check();
    assert.deepEqual(s.app.sent, []);
    assert.equal(s.composer.textContent, '');
    assert.deepEqual(s.fake.reports, [], 'not claimed while its chat is closed');
    assert.equal(noticeText(s.window), 'shown');
    assert.equal(s.interventions.notice.shown, 'intervention_waiting:客户-3AAAAA');

    Object.assign(s.open, { key: 'k-1', customer: '8613800138000' });
    await s.interventions.check();
    assert.deepEqual(s.app.sent, ['hello']);
    assert.equal(noticeText(s.window), null);
  });

  it('leaves the agent’s own draft alone', async () => {
    const s = setup({ replies: [reply(3, 7, 'hello')] });
    s.composer.textContent = 'half a sentence';
    await s.interventions.refresh();
    await s.interventions.check();
    assert.equal(s.composer.textContent, 'half a sentence');
    assert.deepEqual(s.fake.reports, []);
    assert.equal(s.interventions.notice.shown, 'intervention_composer_busy');
  });

  it('sends nothing when another tab or device holds the claim', async () => {
    const s = setup({ replies: [reply(3, 7, 'hello')],
      worker: { claim: () => ({ ok: true, status: 'delivered', claimed: false }) } });
    await s.interventions.refresh();
    await s.interventions.check();
    assert.deepEqual(s.app.sent, []);
    assert.equal(s.composer.textContent, '');
    await s.interventions.check();
    assert.deepEqual(s.fake.reports, [[3, 'sending', undefined]], 'dropped after the refusal');
  });

  it('does not type when the agent switched chats while the claim was on its way', async () => {
    const s = setup({ replies: [reply(3, 7, 'hello')] });
    const ask = s.interventions.ask;
    s.interventions.ask = async (message) => {
      const answer = await ask(message);
      if (message.status === 'sending') Object.assign(s.open, { key: 'k-2', customer: '8613900000000' });
      return answer;
    };
    await s.interventions.refresh();
    await s.interventions.check();
    assert.deepEqual(s.app.sent, []);
    assert.equal(s.composer.textContent, '');
  });

  it('reports a console that would not send', async () => {
    const s = setup({ replies: [reply(3, 7, 'hello')] });
    s.window.document.getElementById('send').remove(); // no button, and Enter does nothing on this page
    await s.interventions.refresh();
    await s.interventions.check();
    await s.settle();
    assert.deepEqual(s.fake.reports.at(-1), [3, 'failed', 'not_sent']);
  });

  it('ignores replies for other platforms and expired ones', async () => {
    const s = setup({ replies: [reply(3, 7, 'a', { conversation: { id: 7, platform: 'telegram', account: '' } }),
      reply(4, 7, 'b', { expiresAt: NOW - 1 })] });
    await s.interventions.refresh();
    await s.interventions.check();
    assert.deepEqual(s.app.sent, []);
    assert.deepEqual(s.fake.reports, []);
  });
});

// ---- the worker's half -----------------------------------------------------------------------------

class FakeSocket extends EventEmitter {
  constructor(answers) {
    super();
    this.connected = true;
    this.answers = answers;
    this.sent = [];
  }

  timeout() {
    return { emitWithAck: async (event, payload) => {
      this.sent.push([event, payload]);
      return this.answers[event]?.(payload) ?? { ok: true };
    } };
  }
}

const INTERVENE = {
  id: 9, text: 'hello', expires_at: new Date(NOW + HOUR).toISOString(),
  conversation: { id: 7, platform: 'whatsapp', account: 'Acme', customer_pseudonym: '客户-ABCDEF' },
};

describe('createInterventions (worker)', () => {
  it('collects waiting replies at connect, says they arrived and keeps them for the tabs', async () => {
    let told = 0;
    const socket = new FakeSocket({ pending_interventions: () => ({ ok: true, interventions: [INTERVENE] }) });
    const worker = createInterventions({ notifyTabs: () => { told += 1; }, now: () => NOW });
    worker.attach(socket);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(worker.list().map((i) => [i.id, i.conversation.pseudonym]), [[9, '客户-ABCDEF']]);
    assert.deepEqual(socket.sent.at(-1), ['intervention_status', { id: 9, status: 'delivered' }]);
    assert.ok(told >= 1);
    socket.emit('intervene', { ...INTERVENE, id: 10, text: '' }); // malformed: ignored
    socket.emit('intervene', { ...INTERVENE, id: 11 });
    assert.deepEqual(worker.list().map((i) => i.id), [9, 11]);
  });

  it('lets one tab claim a reply, and forgets it once sent', async () => {
    const socket = new FakeSocket({
      pending_interventions: () => ({ ok: true, interventions: [INTERVENE] }),
      intervention_status: (p) => (p.status === 'sending' ? { ok: true, status: 'delivered', claimed: true }
        : { ok: true, status: p.status }),
    });
    const worker = createInterventions({ now: () => NOW });
    worker.attach(socket);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal((await worker.report(9, 'sending', undefined, 'tab1:0')).claimed, true);
    assert.equal((await worker.report(9, 'sending', undefined, 'tab2:0')).claimed, false, 'another tab');
    assert.equal((await worker.report(9, 'sending', undefined, 'tab1:0')).claimed, true, 'the same tab again');
    await worker.report(9, 'sent', undefined, 'tab1:0');
    assert.deepEqual(worker.list(), []);
    assert.equal((await worker.report(9, 'sending', undefined, 'tab1:0')).ok, false, 'never sent twice');
  });

  it('asks the server which conversation a chat is, and is offline without a socket', async () => {
    const socket = new FakeSocket({ resolve_chats: (p) => ({ ok: true, conversation_ids: p.chats.map(() => 7) }) });
    const worker = createInterventions({ now: () => NOW });
    assert.equal((await worker.resolve([{ console: 'whatsapp', key: 'k' }])).error.code, 'offline');
    worker.attach(socket);
    assert.deepEqual(await worker.resolve([{ console: 'whatsapp', key: 'k' }]), { ok: true, conversation_ids: [7] });
    assert.equal((await worker.resolve([])).ok, false);
  });
});
