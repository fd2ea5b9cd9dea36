// Content scripts cannot be ES modules, so the message contract is loaded
// with import(); shared/messages.js is web-accessible for that reason.
(() => {
  const INJECTED = Symbol.for('veil.content');
  if (globalThis[INJECTED]) return;
  globalThis[INJECTED] = true;

  import(chrome.runtime.getURL('shared/messages.js'))
    .then(({ MESSAGES }) => chrome.runtime.sendMessage({ type: MESSAGES.CONTENT_TO_SW_PAGE_OPENED }))
    .catch((error) => console.warn('Veil: could not reach the extension', error));
})();
