import { io } from '../vendor/socket.io.esm.min.js';
import { MESSAGES } from '../shared/messages.js';
import { normaliseEnrolmentCode } from '../shared/enrolment_code.js';
import { normaliseServerUrl } from '../shared/server_url.js';
import { createConnection } from './connection.js';
import { listen } from './dispatcher.js';
import { EnrolmentError, enrolDevice } from './enrolment.js';
import * as settings from './settings.js';

const WAKE_ALARM = 'veil-wake';

function broadcastStatus(status) {
  // Rejects when no extension page is open to hear it, which is the usual case.
  chrome.runtime.sendMessage({ type: MESSAGES.SW_TO_UI_STATUS_CHANGED, status }).catch(() => {});
}

const connection = createConnection({ io, store: settings, onStatus: broadcastStatus });

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
  } catch (error) {
    if (!(error instanceof EnrolmentError)) throw error;
    return { ok: false, error: { code: error.code, message: error.message } };
  }
  await connection.restart();
  return { ok: true, status: await currentStatus() };
}

async function forgetDevice() {
  await settings.clearEnrolment();
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
});

chrome.runtime.onInstalled.addListener(() => connection.start());
chrome.runtime.onStartup.addListener(() => connection.start());
chrome.alarms.onAlarm.addListener((alarm) => {
  if (alarm.name === WAKE_ALARM) connection.start();
});
// Re-wakes a worker Chrome has stopped, so a dropped link comes back without waiting for a page.
chrome.alarms.create(WAKE_ALARM, { periodInMinutes: 0.5 });
connection.start();
