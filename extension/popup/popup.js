import { MESSAGES } from '../shared/messages.js';
import { localisePage } from '../shared/page_text.js';
import { renderStatus } from '../shared/status_view.js';

const statusList = document.getElementById('status');

localisePage();
document.getElementById('open-options').addEventListener('click', () => chrome.runtime.openOptionsPage());
chrome.runtime.onMessage.addListener((message) => {
  if (message?.type === MESSAGES.SW_TO_UI_STATUS_CHANGED) renderStatus(statusList, message.status);
});
chrome.runtime.sendMessage({ type: MESSAGES.UI_TO_SW_GET_STATUS }).then((answer) => {
  if (answer?.ok) renderStatus(statusList, answer.status);
  document.documentElement.dataset.ready = 'true';
});
