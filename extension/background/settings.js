// The only module that touches chrome.storage: everything else asks here.
import { RULES_KEY } from '../shared/storage_keys.js';

const ENROLMENT_KEY = 'enrolment';
const LAST_HEARTBEAT_KEY = 'lastHeartbeatAt';
const LINK_WATCH_KEY = 'linkWatch';
const FALLBACK_SERVER_URL = 'http://127.0.0.1:5000';

export async function loadEnrolment() {
  const stored = await chrome.storage.local.get(ENROLMENT_KEY);
  return stored[ENROLMENT_KEY] ?? null;
}

export async function saveEnrolment(enrolment) {
  await chrome.storage.local.set({ [ENROLMENT_KEY]: enrolment });
  await chrome.storage.local.remove(LAST_HEARTBEAT_KEY);
}

// The cached rules stay: content scripts keep guarding with them until the next sync replaces them.
export async function clearEnrolment() {
  await chrome.storage.local.remove([ENROLMENT_KEY, LAST_HEARTBEAT_KEY, LINK_WATCH_KEY]);
}

/** The offline watch's memory (behaviour_watch.js): `{lostAt, reported}`, or null. */
export async function loadLinkWatch() {
  const stored = await chrome.storage.local.get(LINK_WATCH_KEY);
  return stored[LINK_WATCH_KEY] ?? null;
}

export async function saveLinkWatch(state) {
  await chrome.storage.local.set({ [LINK_WATCH_KEY]: state });
}

export async function loadLastHeartbeat() {
  const stored = await chrome.storage.local.get(LAST_HEARTBEAT_KEY);
  return stored[LAST_HEARTBEAT_KEY] ?? null;
}

export async function saveLastHeartbeat(isoTime) {
  await chrome.storage.local.set({ [LAST_HEARTBEAT_KEY]: isoTime });
}

/** The cached rules (see shared/storage_keys.js), or null before the first seed. */
export async function loadRules() {
  const stored = await chrome.storage.local.get(RULES_KEY);
  return stored[RULES_KEY] ?? null;
}

export async function saveRules(rules) {
  await chrome.storage.local.set({ [RULES_KEY]: rules });
}

/** The server URL the build was made for (config.json), offered before enrolment. */
export async function loadDefaultServerUrl() {
  try {
    const response = await fetch(chrome.runtime.getURL('config.json'));
    const config = await response.json();
    return typeof config.serverUrl === 'string' ? config.serverUrl : FALLBACK_SERVER_URL;
  } catch {
    return FALLBACK_SERVER_URL;
  }
}
