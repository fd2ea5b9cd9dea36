// What every panel page shares: the one Socket.IO connection to /panel, page data handed over by the
// template, safe DOM building and toasts. The panel's CSP allows no inline script and no innerHTML of
// chat text: everything customer- or agent-written goes into the page as text nodes via `el`.
import { io } from 'socket.io-client';
import './alerts.js'; // the top bar's alert counter and toasts, on every page

let socketInstance = null;

/** The page's one connection to the /panel namespace (the session cookie signs it in). */
export function panelSocket() {
  if (!socketInstance) {
    socketInstance = io('/panel', { transports: ['websocket'], withCredentials: true });
  }
  return socketInstance;
}

/** JSON the template put in <script type="application/json" id="...">; {} when absent. */
export function pageData(id = 'page-data') {
  const node = document.getElementById(id);
  if (!node) return {};
  try {
    return JSON.parse(node.textContent);
  } catch {
    return {};
  }
}

/** A translated string handed over by the template in #page-i18n, or the key itself. */
export function t(key, values = {}) {
  const strings = pageData('page-i18n');
  let text = strings[key] ?? key;
  for (const [name, value] of Object.entries(values)) text = text.replaceAll(`%(${name})s`, String(value));
  return text;
}

/**
 * Builds an element. `attrs` are set as attributes (event handlers as functions under `on<event>`);
 * children are nodes or strings, and strings always become text nodes, never markup.
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') node.addEventListener(name.slice(2), value);
    else if (name === 'dataset') Object.assign(node.dataset, value);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** A short notice in the corner; `level` is info, warn or alert. */
export function toast(message, { level = 'info', href = null, timeout = 8000 } = {}) {
  let area = document.getElementById('toasts');
  if (!area) {
    area = el('div', { id: 'toasts', role: 'status', 'aria-live': 'polite' });
    document.body.append(area);
  }
  const body = href ? el('a', { href }, message) : el('span', {}, message);
  const item = el('div', { class: `toast ${level}` }, body,
    el('button', { type: 'button', class: 'link', 'aria-label': t('Close'), onclick: () => item.remove() }, '×'));
  area.append(item);
  if (timeout) setTimeout(() => item.remove(), timeout);
  return item;
}

/** Formats an ISO time in the reader's locale and time zone. */
export function localTime(iso, options = { dateStyle: 'short', timeStyle: 'medium' }) {
  if (!iso) return '';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? '' : new Intl.DateTimeFormat(document.documentElement.lang, options).format(date);
}

/** The CSRF token the base template puts in <meta name="csrf-token">, for fetch() posts. */
export function csrfToken() {
  return document.querySelector('meta[name="csrf-token"]')?.content ?? '';
}

/** POST JSON to a panel/API path with the session's CSRF token; resolves to {ok, status, body}. */
export async function postJson(path, body) {
  const response = await fetch(path, {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrfToken() },
    body: JSON.stringify(body),
  });
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  return { ok: response.ok, status: response.status, body: data };
}
