// The console pages the content script runs on come from the console profiles in the rules payload,
// not from the manifest: a profile the admin adds or changes in the panel reaches every agent with the
// next rules sync, without a new extension build.

import { matchPatternToRegExp } from '../content/profile.js';
import { RULES_KEY } from '../shared/storage_keys.js';

export const CONTENT_SCRIPT_ID = 'veil-consoles';
const CONTENT_SCRIPT = { js: ['content/veil.js'], css: ['content/veil.css'] };

// Every valid match pattern of every profile, once each (Chrome refuses the whole list for one bad one).
export function consoleMatches(consoles) {
  const patterns = new Set();
  for (const profile of consoles ?? []) {
    for (const pattern of profile.matches ?? []) {
      if (typeof pattern === 'string' && matchPatternToRegExp(pattern)) patterns.add(pattern);
    }
  }
  return [...patterns].sort();
}

/** Registers (or updates, or removes) the content script for these profiles; returns the patterns. */
export async function registerConsoleScripts(consoles, scripting = chrome.scripting) {
  const matches = consoleMatches(consoles);
  const existing = await scripting.getRegisteredContentScripts({ ids: [CONTENT_SCRIPT_ID] });
  if (matches.length === 0) {
    if (existing.length > 0) await scripting.unregisterContentScripts({ ids: [CONTENT_SCRIPT_ID] });
    return matches;
  }
  const script = {
    id: CONTENT_SCRIPT_ID, matches, ...CONTENT_SCRIPT, runAt: 'document_start', allFrames: true,
    persistAcrossSessions: true,
  };
  if (existing.length > 0) {
    const [current] = existing;
    if (JSON.stringify(current.matches) === JSON.stringify(matches)) return matches;
    await scripting.updateContentScripts([script]);
  } else {
    await scripting.registerContentScripts([script]);
  }
  return matches;
}

// Console tabs that were open before the script was registered get it now (their page stays as it is,
// masked from this moment on).
export async function injectIntoOpenTabs(matches) {
  if (matches.length === 0) return;
  const tabs = await chrome.tabs.query({ url: matches });
  await Promise.all(tabs.map(async (tab) => {
    const target = { tabId: tab.id, allFrames: true };
    try {
      await chrome.scripting.insertCSS({ target, files: CONTENT_SCRIPT.css });
      await chrome.scripting.executeScript({ target, files: CONTENT_SCRIPT.js });
    } catch (error) {
      console.warn('Veil: could not start in tab %s', tab.url, error); // e.g. an error page
    }
  }));
}

// The rules the extension starts with, before its first sync: compiled into the build (rules/default.json).
export async function seedRules() {
  const stored = await chrome.storage.local.get(RULES_KEY);
  // A payload cached by an older build may lack what this engine needs (the Unicode table): until the
  // next sync, the build's own rules stand in for it.
  if (stored[RULES_KEY]?.payload?.unicode) return stored[RULES_KEY];
  const response = await fetch(chrome.runtime.getURL('rules/default.json'));
  const rules = { payload: await response.json(), etag: null, salt: stored[RULES_KEY]?.salt ?? '' };
  await chrome.storage.local.set({ [RULES_KEY]: rules });
  return rules;
}
