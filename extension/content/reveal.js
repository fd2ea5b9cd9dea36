// Revealing one masked customer identifier, for an agent who holds a restore key (docs/protocol.md,
// "reveal").
//
// A click on a masked identifier opens a small popover (a closed shadow root, never masked or read)
// offering to reveal it. The original is already here, in the masker's memory, and never leaves the
// page: the worker is sent only the chat (as the reader sees it) and the SHA-256 of the original, the
// server checks the agent's restore key for that chat and records the use, and only on its yes is the
// original shown, for REVEAL_MS, then masked again. When the agent's grants change (a revocation) every
// revealed identifier is masked again at once.

import { MESSAGES } from '../shared/messages.js';

export const REVEAL_MS = 30_000;
const TEXT_NODE = 3;

/** Lowercase hex SHA-256 of the text's UTF-8. */
export async function spanHash(text, subtle = globalThis.crypto.subtle) {
  const digest = await subtle.digest('SHA-256', new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

/** The text node and the offset (in code points) under a click, where the browser can tell. */
export function caretAt(document, x, y) {
  if (typeof document.caretPositionFromPoint === 'function') {
    const position = document.caretPositionFromPoint(x, y);
    if (position?.offsetNode?.nodeType === TEXT_NODE) return { node: position.offsetNode, offset: position.offset };
  }
  if (typeof document.caretRangeFromPoint === 'function') {
    const range = document.caretRangeFromPoint(x, y);
    if (range?.startContainer?.nodeType === TEXT_NODE) return { node: range.startContainer, offset: range.startOffset };
  }
  return null;
}

const POPOVER_STYLE = `
  :host { all: initial; }
  .box { position: fixed; z-index: 2147483646; box-sizing: border-box; max-width: 300px;
    font: 13px/1.45 system-ui, -apple-system, "Segoe UI", "PingFang SC", "Microsoft YaHei", sans-serif;
    background: #fff; color: #1f2328; border: 1px solid #d0d7de; border-radius: 6px;
    box-shadow: 0 6px 18px rgba(0,0,0,.18); padding: 8px 10px; }
  button { font: inherit; cursor: pointer; border: 1px solid #0969da; background: #0969da; color: #fff;
    border-radius: 4px; padding: 3px 8px; }
  p { margin: 6px 0 0; }
  p:empty { display: none; }
`;

export class Reveals {
  /**
   * masker: content/masker.js; reader: content/reader.js (the open chat); profile: the console profile;
   * ask(message): resolves to the worker's answer; t(key): the extension's strings.
   */
  constructor({ document, masker, reader, profile, ask, t = () => '', setTimer = (fn, ms) => setTimeout(fn, ms),
    clearTimer = (id) => clearTimeout(id), subtle = globalThis.crypto?.subtle }) {
    this.document = document;
    this.masker = masker;
    this.reader = reader;
    this.profile = profile;
    this.ask = ask;
    this.t = t;
    this.setTimer = setTimer;
    this.clearTimer = clearTimer;
    this.subtle = subtle;
    this.timers = new Map(); // original -> the timer that masks it again
    this.host = null;
    this.onClick = this.onClick.bind(this);
  }

  attach(signal) {
    this.document.addEventListener('click', this.onClick, { capture: true, signal });
  }

  // ---- finding what was clicked ----------------------------------------------------------------------

  /** The original of the masked identifier under a click, or null. */
  identifierAt(event) {
    const caret = caretAt(this.document, event.clientX, event.clientY);
    let node = caret?.node ?? null;
    let at = null;
    if (node) {
      at = Array.from((node.nodeValue ?? '').slice(0, caret.offset)).length;
    } else {
      // No caret to ask (or not on text): the first masked identifier of the clicked element's own text.
      const target = event.target;
      node = target?.nodeType === TEXT_NODE ? target : firstText(target);
    }
    if (!node || this.masker.written.get(node) !== node.nodeValue) return null; // nothing masked there
    const { spans, offset } = this.masker.spansAround(node);
    const nodeLength = Array.from(node.nodeValue).length;
    const mine = spans.filter((s) => s.start < offset + nodeLength && offset < s.end);
    if (mine.length === 0) return null;
    if (at === null) return mine[0].original;
    const hit = mine.find((s) => s.start <= offset + at && offset + at <= s.end);
    return hit ? hit.original : null;
  }

  onClick(event) {
    if (this.host && event.composedPath?.().includes(this.host)) return; // a click inside the popover
    const original = this.identifierAt(event);
    if (original === null) {
      this.closePopover();
      return;
    }
    if (this.masker.revealed.has(original)) return;
    // A masked number is often a link (tel:, mailto:) whose target is masked too: following it would
    // dial nothing useful, and an external-protocol prompt would take the page's input away.
    event.preventDefault();
    this.openPopover(original, event.clientX, event.clientY);
  }

  // ---- the popover ----------------------------------------------------------------------------------

  openPopover(original, x, y) {
    this.closePopover();
    const doc = this.document;
    const host = doc.createElement('veil-reveal');
    host.setAttribute('data-veil-ui', '');
    const root = host.attachShadow({ mode: 'closed' });
    const style = doc.createElement('style');
    style.textContent = POPOVER_STYLE;
    const box = doc.createElement('div');
    box.className = 'box';
    box.setAttribute('role', 'dialog');
    const view = doc.defaultView;
    box.style.left = `${Math.max(4, Math.min(x, (view?.innerWidth ?? 800) - 300))}px`;
    box.style.top = `${Math.max(4, y + 12)}px`;
    const button = doc.createElement('button');
    button.type = 'button';
    button.textContent = this.t('reveal_button') || 'Reveal (needs a restore key)';
    const status = doc.createElement('p');
    status.setAttribute('role', 'status');
    button.addEventListener('click', async (event) => {
      event.stopPropagation();
      button.disabled = true;
      status.textContent = await this.request(original);
      button.disabled = false;
    });
    box.append(button, status);
    root.append(style, box);
    doc.documentElement.append(host);
    button.focus(); // Enter reveals, as a click does
    this.host = host;
    // Tests (and the e2e journey) reach the closed root through this handle only.
    this.popover = { host, button, status };
  }

  closePopover() {
    this.host?.remove();
    this.host = null;
    this.popover = null;
  }

  // ---- asking the server --------------------------------------------------------------------------

  openChat() {
    const conversation = this.reader.conversation();
    const chat = { console: this.profile.id, key: conversation.key };
    const account = this.reader.account();
    if (account) chat.account = account;
    if (conversation.customer) chat.customer = conversation.customer;
    return chat;
  }

  /** Asks; shows the original on yes. Returns the line the popover shows. */
  async request(original) {
    let answer;
    try {
      answer = await this.ask({ type: MESSAGES.CONTENT_TO_SW_REVEAL, chat: this.openChat(),
        spanHash: await spanHash(original, this.subtle) });
    } catch {
      answer = null;
    }
    if (!answer?.ok) {
      if (answer?.error?.code === 'no_grant') {
        return this.t('reveal_no_grant') || 'You need a restore key for this chat. Ask the owner for one.';
      }
      return this.t('reveal_failed') || 'Could not ask the server. Try again.';
    }
    this.show(original);
    this.closePopover();
    return this.t('reveal_shown') || 'Shown for 30 seconds.';
  }

  show(original) {
    const root = this.document.documentElement;
    this.masker.reveal(original, root);
    if (this.timers.has(original)) this.clearTimer(this.timers.get(original));
    this.timers.set(original, this.setTimer(() => {
      this.timers.delete(original);
      this.masker.conceal(original, root);
    }, REVEAL_MS));
  }

  /** The agent's grants changed, or the link dropped: everything revealed is masked again now. */
  concealAll() {
    for (const timer of this.timers.values()) this.clearTimer(timer);
    this.timers.clear();
    this.closePopover();
    this.masker.concealAll(this.document.documentElement);
  }
}

function firstText(element) {
  if (!element || element.nodeType !== 1) return null;
  for (let child = element.firstChild; child; child = child.nextSibling) {
    if (child.nodeType === TEXT_NODE && child.nodeValue.trim()) return child;
  }
  return null;
}
