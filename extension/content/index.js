// The content script: runs at document_start in every frame of a page a console profile matches.
//
// Until the rules are loaded and the page's first content masked, the page stays transparent
// (content/veil.css: opacity 0 on <html> until it carries data-veil-ready), so nothing is ever painted
// unmasked. Without rules, or if starting fails, it stays so: a console that shows customers' numbers
// is the one outcome the extension exists to prevent. Then one
// MutationObserver feeds each change to the reader (which reads the console's own text) and then to the
// masker (which rewrites it), both synchronously, before the next paint.

import { Engine } from '../engine/checker.js';
import { MESSAGES } from '../shared/messages.js';
import { RULES_KEY } from '../shared/storage_keys.js';
import { Guard } from './guard.js';
import { Interventions } from './intervention.js';
import { Masker, MASKED_ATTRIBUTES } from './masker.js';
import { Outlet } from './outlet.js';
import { profileForUrl } from './profile.js';
import { Reader } from './reader.js';
import { Reveals } from './reveal.js';
import { watchCopies } from './behaviour.js';

const READY_ATTRIBUTE = 'data-veil-ready';

function t(key, substitutions) {
  try {
    return chrome.i18n.getMessage(key, substitutions);
  } catch {
    return ''; // the extension was reloaded under this page: nothing to translate with
  }
}

function reveal() {
  document.documentElement.setAttribute(READY_ATTRIBUTE, '');
}

async function loadRules() {
  const stored = await chrome.storage.local.get(RULES_KEY);
  return stored[RULES_KEY] ?? null;
}

function start(rules) {
  const profile = profileForUrl(rules.payload.consoles, location.href);
  if (!profile) return false; // not a console page (a profile was removed since the script was registered)
  const engine = new Engine(rules.payload);
  const outlet = new Outlet({ console: profile.id, send: (events) => chrome.runtime.sendMessage({
    type: MESSAGES.CONTENT_TO_SW_EVENTS, events,
  }) });
  let interventions = null; // made below; the reader's events pass through it (a reply's sent row is tagged)
  const emit = (event) => outlet.add(interventions ? interventions.tag(event) : event);
  const masker = new Masker({
    engine, profile,
    askNames: (identifiers) => chrome.runtime.sendMessage({ type: MESSAGES.CONTENT_TO_SW_PSEUDONYMS, identifiers }),
  });
  const reader = new Reader({ profile, masker, emit });
  const guard = new Guard({ engine, profile, reader, emit, t });

  // Read first (the console's own text), then mask: both before the page is shown.
  reader.scan(document);
  masker.maskTree(document.documentElement);
  const observer = new MutationObserver((records) => {
    reader.process(records);
    masker.process(records);
  });
  observer.observe(document.documentElement, {
    childList: true, subtree: true, characterData: true, attributes: true, attributeFilter: MASKED_ATTRIBUTES,
  });
  guard.attach();
  watchCopies({ document, reader, profile, emit });
  interventions = new Interventions({
    profile, reader, guard, t, ask: (message) => chrome.runtime.sendMessage(message),
  });
  const reveals = new Reveals({ document, masker, reader, profile, t, ask: (message) => chrome.runtime.sendMessage(message) });
  reveals.attach();
  chrome.runtime.onMessage.addListener((message, sender) => {
    // only the worker (no tab) may say the supervisor replies or the agent's grants changed
    if (sender.id !== chrome.runtime.id || sender.tab) return;
    if (message?.type === MESSAGES.SW_TO_CONTENT_INTERVENTIONS_CHANGED) interventions.refresh();
    if (message?.type === MESSAGES.SW_TO_CONTENT_GRANTS_CHANGED) reveals.concealAll();
  });
  interventions.start();
  // New rules (the backend pushed a version): the same page goes on with a new engine.
  chrome.storage.onChanged.addListener((changes, area) => {
    const next = area === 'local' ? changes[RULES_KEY]?.newValue : null;
    // the key is rewritten with the same payload too (a sync after the build's seed): no rebuild then
    if (!next?.payload || next.payload.hash === masker.engine.version) return;
    const renewed = new Engine(next.payload);
    masker.engine = renewed;
    guard.engine = renewed;
    masker.maskTree(document.documentElement);
  });
  return true;
}

(async () => {
  const INJECTED = Symbol.for('veil.content');
  if (globalThis[INJECTED]) return;
  globalThis[INJECTED] = true;
  const rules = await loadRules();
  if (!rules?.payload) {
    // Nothing cached yet: the service worker seeds the cache at install. Wait for it, hidden.
    chrome.storage.onChanged.addListener((changes, area) => {
      if (area === 'local' && changes[RULES_KEY]?.newValue) location.reload();
    });
    return;
  }
  if (!document.documentElement) {
    await new Promise((resolve) => document.addEventListener('readystatechange', resolve, { once: true }));
  }
  try {
    start(rules);
  } catch (error) {
    console.error('Veil: the content script could not start; the page stays hidden', error);
    return;
  }
  reveal();
})();
