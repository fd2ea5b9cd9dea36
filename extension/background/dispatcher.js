import { SENDERS } from '../shared/messages.js';

function senderKind(sender) {
  if (sender.id !== chrome.runtime.id) return null;
  const extensionOrigin = new URL(chrome.runtime.getURL('')).origin;
  const origin = sender.origin ?? (sender.url ? new URL(sender.url).origin : null);
  if (origin === extensionOrigin) return 'ui';
  if (sender.tab && sender.frameId !== undefined) return 'content';
  return null;
}

/**
 * The service worker's one message listener. `handlers` maps a message type
 * to an async function of (message, sender); a message from a context not
 * allowed to send it (see SENDERS) is answered with `forbidden` and not handled.
 */
export function listen(handlers) {
  chrome.runtime.onMessage.addListener((message, sender, sendResponse) => {
    const handler = handlers[message?.type];
    if (!handler) return false;
    if (SENDERS[message.type] !== senderKind(sender)) {
      sendResponse({ ok: false, error: { code: 'forbidden' } });
      return false;
    }
    Promise.resolve()
      .then(() => handler(message, sender))
      .then(sendResponse, (error) => {
        console.error('Veil: handling %s failed', message.type, error);
        sendResponse({ ok: false, error: { code: 'internal' } });
      });
    return true;
  });
}
