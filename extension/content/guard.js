// The send guard: before a message leaves the composer (Enter, the send button, a form submit), its
// text is checked with the engine. `block` stops it and says which rule fired; `warn` lets it go only
// with a reason the agent types. Listeners sit on `window` in the capture phase, so they run before
// the console's own handlers, whichever event (keydown, keypress, click, submit) the console sends on.

import { safeClosest, safeQuery } from './profile.js';
import { GuardPanel } from './guard_panel.js';

const SAME_ATTEMPT_MS = 1000; // keydown and keypress of one Enter are one attempt, checked once
const MIN_REASON = 5;

export class Guard {
  constructor({ engine, profile, reader, emit, t, now = () => Date.now(), window: win = globalThis.window }) {
    this.engine = engine;
    this.composer = profile.composer;
    this.reader = reader;
    this.emit = emit;
    this.t = t;
    this.now = now;
    this.window = win;
    this.document = win.document;
    this.panel = new GuardPanel({ document: this.document, t });
    this.last = null; // { text, at, decision }
    this.allowOnce = null; // text the agent confirmed with a reason
  }

  attach() {
    for (const type of ['keydown', 'keypress']) this.window.addEventListener(type, (e) => this.onKey(e), true);
    this.window.addEventListener('click', (e) => this.onClick(e), true);
    this.window.addEventListener('submit', (e) => this.onSubmit(e), true);
  }

  // ---- reading the composer ---------------------------------------------------------------------

  composerFrom(target) {
    return safeClosest(target, this.composer.input);
  }

  currentComposer() {
    const active = this.document.activeElement;
    return this.composerFrom(active) ?? safeQuery(this.document, this.composer.input);
  }

  static textOf(composer) {
    if (composer.tagName === 'TEXTAREA' || composer.tagName === 'INPUT') return composer.value;
    return composer.innerText ?? composer.textContent;
  }

  // ---- events -----------------------------------------------------------------------------------

  onKey(event) {
    if (event.key !== 'Enter' || event.shiftKey || event.isComposing || event.keyCode === 229) return;
    if (this.composer.enter_sends === false) return;
    const composer = this.composerFrom(event.target);
    if (composer) this.gate(event, composer);
  }

  onClick(event) {
    if (!this.composer.send || !safeClosest(event.target, this.composer.send)) return;
    const composer = this.currentComposer();
    if (composer) this.gate(event, composer);
  }

  onSubmit(event) {
    const composer = event.target?.querySelector?.(this.composer.input);
    if (composer) this.gate(event, composer);
  }

  // Lets the event through, or stops it and shows why.
  gate(event, composer) {
    const text = Guard.textOf(composer);
    const decision = this.decide(text);
    if (decision.action === 'allow' || decision.action === 'log') return;
    event.preventDefault();
    event.stopImmediatePropagation();
    if (decision.shown) return;
    decision.shown = true;
    if (decision.action === 'block') {
      this.panel.showBlocked(composer, decision.finding);
    } else {
      this.panel.showWarning(composer, decision.finding, {
        minimum: MIN_REASON,
        onConfirm: (reason) => this.sendWithReason(composer, text, decision, reason),
      });
    }
  }

  // ---- deciding ---------------------------------------------------------------------------------

  decide(text) {
    const now = this.now();
    if (this.last && this.last.text === text && now - this.last.at < SAME_ATTEMPT_MS) return this.last.decision;
    let decision;
    if (text.trim() === '') decision = { action: 'allow' };
    else if (this.allowOnce === text) {
      this.allowOnce = null;
      decision = { action: 'allow' };
    } else decision = this.check(text, now);
    this.last = { text, at: now, decision };
    return decision;
  }

  check(text, now) {
    const conversation = this.reader.conversation();
    const result = this.engine.check(text, { conversation: conversation.key, direction: 'out', at: now / 1000 });
    const finding = mostSevere(result.findings, this.engine, result.action);
    const decision = { action: result.action, finding, conversation };
    if (result.action === 'block') {
      this.report('send_blocked', decision, text);
    } else if (result.findings.some((f) => f.category === 'contact_request')) {
      this.report('contact_request', decision, text);
    }
    return decision;
  }

  sendWithReason(composer, text, decision, reason) {
    if (reason.trim().length < MIN_REASON) return false;
    this.report('send_warned', decision, text, reason.trim().slice(0, 1000));
    this.allowOnce = text;
    this.last = null;
    composer.focus();
    const button = this.composer.send ? safeQuery(this.document, this.composer.send) : null;
    if (button) button.click();
    else {
      for (const type of ['keydown', 'keypress']) {
        composer.dispatchEvent(new KeyboardEvent(type, {
          key: 'Enter', code: 'Enter', keyCode: 13, which: 13, bubbles: true, cancelable: true,
        }));
      }
    }
    return true;
  }

  report(kind, decision, text, reason) {
    const event = { type: 'behaviour', kind, conversation: decision.conversation, text };
    if (decision.finding) event.rule = decision.finding.rule;
    if (reason) event.reason = reason;
    this.emit(event);
  }
}

// The finding that decided the action: the first whose own action (settings.toml) is that action.
function mostSevere(findings, engine, action) {
  const { actions, contacts } = engine.settings;
  const actionOf = (f) => (f.type === 'word' ? actions[f.category] ?? 'block' : contacts.action);
  return findings.find((f) => actionOf(f) === action) ?? findings[0] ?? null;
}
