// Alerts on every panel page: the counter in the top bar follows `alert_count`, and each `alert` pushed to
// this user's room shows a toast linking to the event. The template renders the first count and the words
// (behaviour and severity labels in the page's language) on #alert-badge; agents have no badge, so their
// pages do nothing here.
import { panelSocket, toast } from './common.js';

const TOAST_LEVELS = { info: 'info', warning: 'warn', critical: 'alert' };

/** Only a path on this site may become a link. */
function samePath(url) {
  return typeof url === 'string' && url.startsWith('/') && !url.startsWith('//') ? url : null;
}

function readLabels(badge) {
  try {
    return JSON.parse(badge.dataset.labels || '{}');
  } catch {
    return {};
  }
}

function start() {
  const badge = document.getElementById('alert-badge');
  const count = badge?.querySelector('.count');
  if (!badge || !count) return;
  const labels = readLabels(badge);
  const setCount = (unread) => {
    count.textContent = String(unread);
    count.dataset.unread = String(unread);
  };
  const socket = panelSocket();
  socket.on('alert_count', (data) => {
    if (Number.isInteger(data?.unread) && data.unread >= 0) setCount(data.unread);
  });
  socket.on('alert', (alert) => {
    if (!alert || typeof alert !== 'object') return;
    const kind = labels.types?.[alert.type] ?? String(alert.type ?? '');
    const severity = labels.severities?.[alert.severity] ?? String(alert.severity ?? '');
    const agent = typeof alert.agent?.name === 'string' ? alert.agent.name : '';
    toast([severity, kind, agent].filter(Boolean).join(' · '),
      { level: TOAST_LEVELS[alert.severity] ?? 'info', href: samePath(alert.url), timeout: 12000 });
    document.dispatchEvent(new CustomEvent('veil:alert', { detail: alert }));
  });
}

// common.js imports this file before its own body has run; start once every module of the bundle has.
queueMicrotask(start);
