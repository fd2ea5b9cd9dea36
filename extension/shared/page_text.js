// Extension pages name a message in data-i18n instead of holding text, so one HTML
// file serves every locale in _locales/.
export function localisePage(root = document) {
  document.documentElement.lang = chrome.i18n.getUILanguage();
  for (const element of root.querySelectorAll('[data-i18n]')) {
    element.textContent = chrome.i18n.getMessage(element.dataset.i18n);
  }
  const title = document.querySelector('title[data-i18n]');
  if (title) document.title = title.textContent;
}

/** Readable text for an error answer from the service worker; server text is only ever used as text. */
export function errorText(error) {
  const code = String(error?.code ?? '');
  const known = /^\w+$/.test(code) ? chrome.i18n.getMessage(`error_${code}`) : '';
  if (known) return known;
  if (error?.message) return chrome.i18n.getMessage('errorServerSaid', [String(error.message)]);
  return chrome.i18n.getMessage('errorUnknown', [code || '?']);
}
