import { MESSAGES } from '../shared/messages.js';
import { normaliseEnrolmentCode } from '../shared/enrolment_code.js';
import { normaliseServerUrl } from '../shared/server_url.js';
import { errorText, localisePage } from '../shared/page_text.js';
import { renderStatus } from '../shared/status_view.js';

const form = document.getElementById('enrol-form');
const serverUrlInput = document.getElementById('server-url');
const codeInput = document.getElementById('enrolment-code');
const labelInput = document.getElementById('device-label');
const enrolButton = document.getElementById('enrol-button');
const forgetButton = document.getElementById('forget-button');
const formMessage = document.getElementById('form-message');
const statusSection = document.getElementById('status');

function showMessage(kind, text) {
  formMessage.dataset.kind = kind;
  formMessage.textContent = text;
}

function showStatus(status) {
  renderStatus(statusSection, status);
  forgetButton.hidden = !status.enrolled;
  if (!serverUrlInput.value && status.serverUrl) serverUrlInput.value = status.serverUrl;
}

async function enrol(event) {
  event.preventDefault();
  // Checked here too so the agent sees a mistake at once; the worker checks again.
  const serverUrl = normaliseServerUrl(serverUrlInput.value);
  if (!serverUrl.ok) return showMessage('error', errorText({ code: `server_url_${serverUrl.reason}` }));
  const code = normaliseEnrolmentCode(codeInput.value);
  if (!code.ok) return showMessage('error', errorText({ code: `code_${code.reason}` }));

  serverUrlInput.value = serverUrl.url;
  codeInput.value = code.code;
  enrolButton.disabled = true;
  showMessage('progress', chrome.i18n.getMessage('enrolling'));
  try {
    const answer = await chrome.runtime.sendMessage({
      type: MESSAGES.UI_TO_SW_ENROL,
      serverUrl: serverUrl.url,
      code: code.code,
      label: labelInput.value,
    });
    if (!answer?.ok) return showMessage('error', errorText(answer?.error));
    codeInput.value = '';
    showMessage('success', chrome.i18n.getMessage('enrolSucceeded'));
    showStatus(answer.status);
  } finally {
    enrolButton.disabled = false;
  }
}

async function forgetDevice() {
  const answer = await chrome.runtime.sendMessage({ type: MESSAGES.UI_TO_SW_FORGET_DEVICE });
  if (!answer?.ok) return showMessage('error', errorText(answer?.error));
  showMessage('success', '');
  showStatus(answer.status);
}

localisePage();
form.addEventListener('submit', enrol);
forgetButton.addEventListener('click', forgetDevice);
chrome.runtime.onMessage.addListener((message) => {
  if (message?.type === MESSAGES.SW_TO_UI_STATUS_CHANGED) showStatus(message.status);
});
chrome.runtime.sendMessage({ type: MESSAGES.UI_TO_SW_GET_STATUS }).then((answer) => {
  if (answer?.ok) showStatus(answer.status);
  document.documentElement.dataset.ready = 'true';
});
