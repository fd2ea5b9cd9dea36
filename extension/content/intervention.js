// Supervisor replies (interventions, docs/protocol.md): a supervisor writes a reply in the panel, and
// this script puts it into the console's composer and sends it, in the one chat it was written for.
//
// The server knows a chat only by a keyed hash of the customer and a pseudonym; this page knows it by
// what the profile reads (the chat's key and customer). So the worker asks the server which logged
// conversation the open chat is (`resolve_chats`, the same hashing ingest uses), and a reply goes out
// only when that is the reply's conversation, checked again just before the text goes in. Otherwise
// the agent sees a small notice naming the chat (by its pseudonym) and the reply waits.
//
// Before typing, the reply is claimed through the worker: the server gives it to one device, and the
// worker to one tab, so it is never sent twice. The text goes in the way typing does (input events the
// console's framework reads), the guard lets exactly that text through once, and the console's own
// send button (or Enter) sends it. The outgoing message the reader then sees carries the reply's id
// (`tag`), so the server can log it as the supervisor's.

import { MESSAGES } from '../shared/messages.js';
import { Guard } from './guard.js';
import { safeQuery } from './profile.js';

const CHECK_MS = 1000; // how often a waiting reply looks at the open chat
const SETTLE_MS = 1500; // after pressing send, the composer should have emptied by then
const TAG_WITHIN_MS = 60_000; // the sent row must show up in the list within this time to be tagged
const UNKNOWN_CHAT_MS = 10_000; // a chat the server did not know is asked about again after this
const MISSING_COMPOSER_CHECKS = 10; // the reply's chat is open but has no composer: give up after this

/** The same words, however a console trims or re-wraps them. */
export function sameWords(a, b) {
  const words = (text) => String(text ?? '').split(/\s+/).filter(Boolean).join(' ');
  return words(a) === words(b);
}

/**
 * Puts `text` into a composer as typing would: a textarea's value through the element's own setter (the
 * one frameworks such as React watch), a contenteditable through the editing command that fires
 * beforeinput/input (Lexical, Draft, Slate), and in either case an `input` event the app reads its
 * draft from. Whatever was in the composer is replaced.
 */
export function insertText(composer, text, win = composer.ownerDocument.defaultView) {
  composer.focus();
  if (composer.tagName === 'TEXTAREA' || composer.tagName === 'INPUT') {
    const proto = composer.tagName === 'TEXTAREA' ? win.HTMLTextAreaElement.prototype : win.HTMLInputElement.prototype;
    const setter = Object.getOwnPropertyDescriptor(proto, 'value')?.set;
    if (setter) setter.call(composer, text);
    else composer.value = text;
    composer.dispatchEvent(new win.InputEvent('input', { bubbles: true, inputType: 'insertText', data: text }));
    return;
  }
  const doc = composer.ownerDocument;
  const selection = doc.getSelection?.();
  if (selection) {
    const range = doc.createRange();
    range.selectNodeContents(composer);
    selection.removeAllRanges();
    selection.addRange(range);
  }
  let inserted = false;
  try {
    inserted = typeof doc.execCommand === 'function' && doc.execCommand('insertText', false, text);
  } catch {
    inserted = false;
  }
  if (!inserted || !sameWords(Guard.textOf(composer), text)) {
    composer.textContent = text;
    composer.dispatchEvent(new win.InputEvent('input', { bubbles: true, inputType: 'insertText', data: text }));
  }
}

const NOTICE_STYLE = `
  :host { all: initial; }
  .notice { position: fixed; z-index: 2147483646; right: 16px; bottom: 16px; max-width: 360px;
    box-sizing: border-box; font: 13px/1.45 system-ui, -apple-system, "Segoe UI", "PingFang SC",
    "Microsoft YaHei", sans-serif; background: #fff; color: #1f2328; border: 1px solid #d0d7de;
    border-left: 4px solid #0969da; border-radius: 6px; box-shadow: 0 6px 18px rgba(0,0,0,.18);
    padding: 10px 12px; }
  .title { font-weight: 600; margin: 0 0 4px; }
  p { margin: 0; }
`;

/** The agent's notice about a waiting reply: a closed shadow root on <html>, never masked or read. */
class Notice {
  constructor({ document, t }) {
    this.document = document;
    this.t = t;
    this.host = null;
    this.text = null;
  }

  show(text) {
    if (this.host?.isConnected && this.text === text) return;
    this.hide();
    const host = this.document.createElement('veil-intervention');
    host.setAttribute('data-veil-ui', '');
    const root = host.attachShadow({ mode: 'closed' });
    const style = this.document.createElement('style');
    style.textContent = NOTICE_STYLE;
    const box = this.document.createElement('div');
    box.className = 'notice';
    box.setAttribute('role', 'status');
    const title = this.document.createElement('p');
    title.className = 'title';
    title.textContent = this.t('intervention_title') || 'Veil';
    const body = this.document.createElement('p');
    body.textContent = text;
    box.append(title, body);
    root.append(style, box);
    this.document.documentElement.append(host);
    this.host = host;
    this.text = text;
  }

  hide() {
    this.host?.remove();
    this.host = null;
    this.text = null;
  }

  get shown() {
    return this.text;
  }
}

export class Interventions {
  /**
   * profile: the console profile; reader: reads the open chat; guard: lets the reply through once;
   * ask(message): a runtime message to the worker, answered with a promise; t: chrome.i18n.
   */
  constructor({ profile, reader, guard, ask, t, window: win = globalThis.window, now = () => Date.now(),
    setTimer = (fn, ms) => setTimeout(fn, ms) }) {
    this.profile = profile;
    this.platform = profile.platform ?? profile.id;
    this.reader = reader;
    this.guard = guard;
    this.ask = ask;
    this.window = win;
    this.document = win.document;
    this.now = now;
    this.setTimer = setTimer;
    this.notice = new Notice({ document: this.document, t });
    this.t = t;
    this.pending = []; // replies for this console's platform, as the worker keeps them
    this.resolved = new Map(); // chat signature -> { id, at }
    this.awaiting = []; // replies just sent, waiting for their row: { id, key, text, until }
    this.timer = null;
    this.busy = false;
    this.missingComposer = 0;
  }

  start() {
    return this.refresh();
  }

  /** Asks the worker for the waiting replies (at start, and when it says the list changed). */
  async refresh() {
    let answer;
    try {
      answer = await this.ask({ type: MESSAGES.CONTENT_TO_SW_INTERVENTIONS });
    } catch {
      return; // no worker (the extension was reloaded under this page)
    }
    if (!answer?.ok || !Array.isArray(answer.interventions)) return;
    this.pending = answer.interventions.filter((i) => i?.conversation?.platform === this.platform);
    if (this.pending.length === 0) this.notice.hide();
    this.schedule(0);
  }

  schedule(delay) {
    if (this.timer !== null || this.pending.length === 0) return;
    this.timer = this.setTimer(async () => {
      try {
        await this.check();
      } finally {
        this.timer = null;
        this.schedule(CHECK_MS);
      }
    }, delay);
  }

  openChat() {
    const conversation = this.reader.conversation();
    const chat = { key: conversation.key, customer: conversation.customer ?? null, account: this.reader.account() ?? '' };
    chat.signature = JSON.stringify([chat.account, chat.key, chat.customer]);
    return chat;
  }

  async resolve(chat) {
    const known = this.resolved.get(chat.signature);
    if (known && (known.id !== null || this.now() - known.at < UNKNOWN_CHAT_MS)) return known.id;
    const question = { console: this.profile.id, key: chat.key };
    if (chat.account) question.account = chat.account;
    if (chat.customer) question.customer = chat.customer;
    let answer;
    try {
      answer = await this.ask({ type: MESSAGES.CONTENT_TO_SW_RESOLVE_CHATS, chats: [question] });
    } catch {
      answer = null;
    }
    if (!answer?.ok || !Array.isArray(answer.conversation_ids)) return null; // offline: ask again next time
    const id = Number.isInteger(answer.conversation_ids[0]) ? answer.conversation_ids[0] : null;
    this.resolved.set(chat.signature, { id, at: this.now() });
    return id;
  }

  composer() {
    return this.profile.composer?.input ? safeQuery(this.document, this.profile.composer.input) : null;
  }

  /** One look at the open chat: send a reply that belongs here, or tell the agent where one waits. */
  async check() {
    if (this.busy) return;
    this.busy = true;
    try {
      await this.checkOnce();
    } finally {
      this.busy = false;
    }
  }

  async checkOnce() {
    const at = this.now();
    this.pending = this.pending.filter((i) => i.expiresAt > at);
    if (this.pending.length === 0) {
      this.notice.hide();
      return;
    }
    const chat = this.openChat();
    const conversationId = await this.resolve(chat);
    const target = this.pending.find((i) => conversationId !== null && i.conversation.id === conversationId);
    if (!target) {
      const chats = [...new Set(this.pending.map((i) => i.conversation.pseudonym || `#${i.conversation.id}`))];
      this.notice.show(this.t('intervention_waiting', [chats.join(', ')]) || chats.join(', '));
      this.missingComposer = 0;
      return;
    }
    const composer = this.composer();
    if (!composer) {
      if (++this.missingComposer >= MISSING_COMPOSER_CHECKS) await this.finish(target, 'failed', 'composer_not_found');
      return;
    }
    this.missingComposer = 0;
    if (Guard.textOf(composer).trim() !== '') {
      // the agent is typing: their draft is not ours to replace
      this.notice.show(this.t('intervention_composer_busy') || target.conversation.pseudonym);
      return;
    }
    const claim = await this.report(target.id, 'sending');
    if (!claim?.ok || !claim.claimed) {
      // taken by another tab or device, expired, or unknown: not ours; offline: try again later
      if (claim?.ok || ['not_found', 'unknown'].includes(claim?.error?.code)) this.drop(target.id);
      return;
    }
    // The claim took a round trip: the agent may have switched chats or started typing meanwhile.
    const current = this.openChat();
    if (current.signature !== chat.signature || !composer.isConnected || Guard.textOf(composer).trim() !== '') return;
    this.deliver(target, composer, chat);
  }

  deliver(target, composer, chat) {
    this.notice.hide();
    insertText(composer, target.text, this.window);
    const typed = Guard.textOf(composer);
    if (!sameWords(typed, target.text)) {
      this.finish(target, 'failed', 'insert_failed');
      return;
    }
    this.awaiting.push({ id: target.id, key: chat.key, text: target.text, until: this.now() + TAG_WITHIN_MS });
    // The supervisor's text is not the agent's to be stopped for; the server still checks it on arrival.
    this.guard.allowOnce = typed;
    this.guard.last = null;
    this.drop(target.id);
    this.press(composer);
    this.setTimer(() => {
      const left = composer.isConnected ? Guard.textOf(composer).trim() : '';
      this.finish(target, left === '' ? 'sent' : 'failed', left === '' ? undefined : 'not_sent');
    }, SETTLE_MS);
  }

  press(composer) {
    const button = this.profile.composer?.send ? safeQuery(this.document, this.profile.composer.send) : null;
    if (button) {
      button.click();
      return;
    }
    for (const type of ['keydown', 'keypress']) {
      composer.dispatchEvent(new this.window.KeyboardEvent(type, {
        key: 'Enter', code: 'Enter', keyCode: 13, which: 13, bubbles: true, cancelable: true,
      }));
    }
  }

  report(id, status, error) {
    const message = { type: MESSAGES.CONTENT_TO_SW_INTERVENTION_STATUS, id, status };
    if (error) message.error = error;
    return this.ask(message).catch(() => null);
  }

  async finish(target, status, error) {
    this.drop(target.id);
    await this.report(target.id, status, error);
  }

  drop(id) {
    this.pending = this.pending.filter((i) => i.id !== id);
    if (this.pending.length === 0) this.notice.hide();
  }

  /** An event on its way to the worker: the outgoing row of a reply just sent carries the reply's id. */
  tag(event) {
    if (event?.type !== 'message' || event.direction !== 'out' || this.awaiting.length === 0) return event;
    const at = this.now();
    this.awaiting = this.awaiting.filter((a) => a.until > at);
    const index = this.awaiting.findIndex((a) => a.key === event.conversation?.key && sameWords(a.text, event.text));
    if (index < 0) return event;
    const [sent] = this.awaiting.splice(index, 1);
    return { ...event, intervention_id: sent.id };
  }
}
