// What the agent sees when the guard stops a message: a small panel just above the composer, in the
// agent's language, saying which rule fired; for a warning, a reason box and a "send" button.
// It lives in a closed shadow root on <html>, so the console's styles and re-renders leave it alone,
// and it carries data-veil-ui so the masker never rewrites it.

const STYLE = `
  :host { all: initial; }
  .panel { position: fixed; z-index: 2147483647; max-width: 420px; box-sizing: border-box;
    font: 13px/1.45 system-ui, -apple-system, "Segoe UI", "PingFang SC", "Microsoft YaHei", sans-serif;
    background: #fff; color: #1f2328; border: 1px solid #d0d7de; border-left: 4px solid #cf222e;
    border-radius: 6px; box-shadow: 0 6px 18px rgba(0,0,0,.18); padding: 10px 12px; }
  .panel.warn { border-left-color: #bf8700; }
  .title { font-weight: 600; margin: 0 0 4px; }
  .hint { margin: 0 0 8px; color: #57606a; }
  textarea { width: 100%; box-sizing: border-box; min-height: 48px; font: inherit; padding: 6px;
    border: 1px solid #d0d7de; border-radius: 4px; resize: vertical; }
  .row { display: flex; gap: 8px; justify-content: flex-end; margin-top: 8px; }
  button { font: inherit; padding: 4px 12px; border-radius: 4px; border: 1px solid #d0d7de;
    background: #f6f8fa; cursor: pointer; }
  button.primary { background: #bf8700; border-color: #bf8700; color: #fff; }
  button:disabled { opacity: .5; cursor: default; }
`;

export class GuardPanel {
  constructor({ document, t }) {
    this.document = document;
    this.t = t;
    this.host = null;
  }

  // "sensitive word “私下交易” (private deal)" or "a phone number"
  describe(finding) {
    if (!finding) return this.t('rule_unknown');
    if (finding.type === 'word') {
      const category = this.t(`category_${finding.category}`) || finding.category;
      return this.t('rule_word', [finding.text, category]);
    }
    return this.t(`kind_${finding.category}`) || finding.category;
  }

  mount(composer, kind) {
    this.close();
    const host = this.document.createElement('veil-guard');
    host.setAttribute('data-veil-ui', '');
    const root = host.attachShadow({ mode: 'closed' });
    const style = this.document.createElement('style');
    style.textContent = STYLE;
    const panel = this.document.createElement('div');
    panel.className = `panel ${kind}`;
    panel.setAttribute('role', 'alert');
    root.append(style, panel);
    this.document.documentElement.append(host);
    const rect = composer.getBoundingClientRect();
    const view = this.document.defaultView;
    panel.style.left = `${Math.max(8, Math.min(rect.left, view.innerWidth - 428))}px`;
    panel.style.bottom = `${Math.max(8, view.innerHeight - rect.top + 8)}px`;
    this.host = host;
    this.root = root;
    return panel;
  }

  text(tag, className, content) {
    const element = this.document.createElement(tag);
    if (className) element.className = className;
    element.textContent = content; // chat text is never parsed as HTML
    return element;
  }

  showBlocked(composer, finding) {
    const panel = this.mount(composer, 'block');
    const close = this.text('button', '', this.t('guard_dismiss'));
    close.addEventListener('click', () => this.close());
    const row = this.document.createElement('div');
    row.className = 'row';
    row.append(close);
    panel.append(
      this.text('p', 'title', this.t('guard_blocked', [this.describe(finding)])),
      this.text('p', 'hint', this.t('guard_blocked_hint')),
      row,
    );
    // typing on dismisses it, so it never stands in the agent's way
    composer.addEventListener('input', () => this.close(), { once: true });
  }

  showWarning(composer, finding, { minimum, onConfirm }) {
    const panel = this.mount(composer, 'warn');
    const reason = this.document.createElement('textarea');
    reason.placeholder = this.t('guard_reason', [String(minimum)]);
    reason.setAttribute('aria-label', this.t('guard_reason', [String(minimum)]));
    const send = this.text('button', 'primary', this.t('guard_send_with_reason'));
    send.disabled = true;
    const cancel = this.text('button', '', this.t('guard_cancel'));
    reason.addEventListener('input', () => {
      send.disabled = reason.value.trim().length < minimum;
    });
    reason.addEventListener('keydown', (event) => event.stopPropagation());
    send.addEventListener('click', () => {
      const value = reason.value;
      this.close();
      onConfirm(value);
    });
    cancel.addEventListener('click', () => this.close());
    const row = this.document.createElement('div');
    row.className = 'row';
    row.append(cancel, send);
    panel.append(
      this.text('p', 'title', this.t('guard_warned', [this.describe(finding)])),
      this.text('p', 'hint', this.t('guard_warned_hint')),
      reason,
      row,
    );
    reason.focus();
  }

  isOpen() {
    return this.host !== null && this.host.isConnected;
  }

  close() {
    this.host?.remove();
    this.host = null;
  }
}
