import { io } from '../vendor/socket.io.esm.min.js';
import { MESSAGES } from '../shared/messages.js';
import { normaliseEnrolmentCode } from '../shared/enrolment_code.js';
import { normaliseServerUrl } from '../shared/server_url.js';
import { applyRemovalLink, createOfflineWatch } from './behaviour_watch.js';
import { createConnection } from './connection.js';
import { injectIntoOpenTabs, registerConsoleScripts, seedRules } from './consoles.js';
import { listen } from './dispatcher.js';
import { EnrolmentError, enrolDevice } from './enrolment.js';
import { createInterventions } from './interventions.js';
import { openOutbox } from './outbox.js';
import { createPseudonymLookup } from './pseudonyms.js';
import { createReveals } from './reveals.js';
import { createRulesSync } from './rules.js';
import * as settings from './settings.js';
import { createStream } from './stream.js';

const WAKE_ALARM = 'veil-wake';

// Supervisor replies changed: every tab hears it, and the console tabs' content scripts ask for the list.
async function notifyConsoleTabs(type = MESSAGES.SW_TO_CONTENT_INTERVENTIONS_CHANGED) {
  const tabs = await chrome.tabs.query({}).catch(() => []);
  for (const tab of tabs) {
    // Rejects for tabs without the content script, which are most of them.
    chrome.tabs.sendMessage(tab.id, { type }).catch(() => {});
  }
}

function broadcastStatus(status) {
  // Rejects when no extension page is open to hear it, which is the usual case.
  chrome.runtime.sendMessage({ type: MESSAGES.SW_TO_UI_STATUS_CHANGED, status }).catch(() => {});
}

// Service workers may not await at the top level, so the parts take the outbox as a promise.
const outbox = openOutbox();
const stream = createStream({ outbox, onCount: (n) => connection.report({ outbox: n }) });
const offlineWatch = createOfflineWatch({ store: settings, queue: (events) => stream.queue(events) });
const pseudonyms = createPseudonymLookup();
const interventions = createInterventions({ notifyTabs: notifyConsoleTabs });
const reveals = createReveals({ notifyTabs: () => notifyConsoleTabs(MESSAGES.SW_TO_CONTENT_GRANTS_CHANGED) });
const rules = createRulesSync({ store: settings, onRules: useRules });
const connection = createConnection({
  io,
  store: settings,
  onStatus(status) {
    broadcastStatus(status);
    offlineWatch.follow(status);
  },
  onConnected(socket, enrolment) {
    socket.on('rules_changed', (data) => rules.sync(enrolment, typeof data?.version === 'string' ? data.version : null));
    rules.sync(enrolment);
    stream.attach(socket);
    pseudonyms.attach(socket);
    interventions.attach(socket);
    reveals.attach(socket);
  },
  onDisconnected: () => {
    stream.detach();
    pseudonyms.detach();
    interventions.detach();
    reveals.detach();
  },
});

let registration = Promise.resolve(null);

/**
 * Cached rules, new or not: the content script follows their console profiles
 * (one registration at a time), the popup their version. A payload without a
 * `consoles` list leaves the registration as it is.
 */
function useRules(cached) {
  connection.report({ rulesVersion: cached?.version ?? null });
  const consoles = cached?.payload?.consoles;
  if (!Array.isArray(consoles)) return registration;
  registration = registration.catch(() => null).then(() => registerConsoleScripts(consoles));
  return registration;
}

// Every wake-up: the build's rules until the first sync, and the content script registered for them.
async function startConsoles() {
  try {
    return await useRules(await seedRules());
  } catch (error) {
    console.error('Veil: could not start the content scripts', error);
    return null;
  }
}

async function currentStatus() {
  await connection.start();
  const status = connection.getStatus();
  return { ...status, serverUrl: status.serverUrl ?? (await settings.loadDefaultServerUrl()) };
}

async function enrol({ serverUrl, code, label }) {
  const url = normaliseServerUrl(serverUrl);
  if (!url.ok) return { ok: false, error: { code: `server_url_${url.reason}` } };
  const enrolmentCode = normaliseEnrolmentCode(code);
  if (!enrolmentCode.ok) return { ok: false, error: { code: `code_${enrolmentCode.reason}` } };
  try {
    const enrolment = await enrolDevice({
      serverUrl: url.url,
      code: enrolmentCode.code,
      label: String(label ?? '').trim().slice(0, 100),
      userAgent: navigator.userAgent,
    });
    await settings.saveEnrolment(enrolment);
    await applyRemovalLink(enrolment);
  } catch (error) {
    if (!(error instanceof EnrolmentError)) throw error;
    return { ok: false, error: { code: error.code, message: error.message } };
  }
  await connection.restart();
  return { ok: true, status: await currentStatus() };
}

async function forgetDevice() {
  await settings.clearEnrolment();
  await applyRemovalLink(null);
  // Unsent events belong to the device being forgotten; they cannot be sent as anyone else's.
  await stream.clear();
  await connection.restart();
  return { ok: true, status: await currentStatus() };
}

listen({
  [MESSAGES.UI_TO_SW_GET_STATUS]: async () => ({ ok: true, status: await currentStatus() }),
  [MESSAGES.UI_TO_SW_ENROL]: (message) => enrol(message),
  [MESSAGES.UI_TO_SW_FORGET_DEVICE]: () => forgetDevice(),
  [MESSAGES.CONTENT_TO_SW_PAGE_OPENED]: async () => {
    await connection.start();
    return { ok: true };
  },
  [MESSAGES.CONTENT_TO_SW_PSEUDONYMS]: (message) => pseudonyms.lookup(message.identifiers),
  [MESSAGES.CONTENT_TO_SW_INTERVENTIONS]: async () => {
    await connection.start();
    return { ok: true, interventions: interventions.list() };
  },
  [MESSAGES.CONTENT_TO_SW_RESOLVE_CHATS]: (message) => interventions.resolve(message.chats),
  [MESSAGES.CONTENT_TO_SW_REVEAL]: async (message) => {
    await connection.start();
    return reveals.reveal(message.chat, message.spanHash);
  },
  [MESSAGES.CONTENT_TO_SW_INTERVENTION_STATUS]: (message, sender) => interventions.report(message.id,
    message.status, message.error, `${sender.tab?.id}:${sender.frameId}`),
  [MESSAGES.CONTENT_TO_SW_EVENTS]: async (message) => {
    await connection.start(); // a worker just woken knows its enrolment after this
    // Events while the link is down mean the console is being used unwatched: say so, once.
    await offlineWatch.notice(message.events, connection.getStatus());
    return stream.queue(message.events);
  },
});

const consolesStarted = startConsoles();
chrome.runtime.onInstalled.addListener(async () => {
  connection.start();
  const matches = await consolesStarted;
  if (matches) await injectIntoOpenTabs(matches);
});
chrome.runtime.onStartup.addListener(() => connection.start());
chrome.alarms.onAlarm.addListener((alarm) => {
  if (alarm.name === WAKE_ALARM) connection.start();
});
// Re-wakes a worker Chrome has stopped, so a dropped link comes back (and the outbox drains) without
// waiting for a page.
chrome.alarms.create(WAKE_ALARM, { periodInMinutes: 0.5 });
stream.publishCount();
connection.start();
// Every start: Chrome keeps the link, but an enrolment made by an older version may not have set it.
settings.loadEnrolment().then(applyRemovalLink);
