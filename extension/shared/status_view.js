// Fills the status block shared by the options page and the popup. The
// data-state / data-at attributes are there for the end-to-end tests.
export function renderStatus(root, status) {
  const enrolment = root.querySelector('[data-field="enrolment"]');
  enrolment.dataset.state = status.enrolled ? 'enrolled' : 'not-enrolled';
  enrolment.dataset.deviceId = status.enrolled ? String(status.deviceId) : '';
  enrolment.textContent = status.enrolled
    ? chrome.i18n.getMessage('enrolledAs', [status.agentEmail, status.tenantName])
    : chrome.i18n.getMessage('notEnrolled');

  const connection = root.querySelector('[data-field="connection"]');
  connection.dataset.state = status.connection;
  connection.textContent = chrome.i18n.getMessage(`connection_${status.connection.replaceAll('-', '_')}`);

  const heartbeat = root.querySelector('[data-field="last-heartbeat"]');
  heartbeat.dataset.at = status.lastHeartbeatAt ?? '';
  heartbeat.textContent = status.lastHeartbeatAt
    ? new Date(status.lastHeartbeatAt).toLocaleString(chrome.i18n.getUILanguage())
    : chrome.i18n.getMessage('lastHeartbeatNever');
}
