// Fills the status block shared by the options page and the popup. The
// data-state / data-at / data-count / data-version attributes are there for
// the end-to-end tests.
export function renderStatus(root, status) {
  const enrolment = root.querySelector('[data-field="enrolment"]');
  enrolment.dataset.state = status.enrolled ? 'enrolled' : 'not-enrolled';
  enrolment.dataset.deviceId = status.enrolled ? String(status.deviceId) : '';
  enrolment.textContent = status.enrolled
    ? chrome.i18n.getMessage('enrolledAs', [status.agentEmail, status.tenantName])
    : chrome.i18n.getMessage('notEnrolled');

  const server = root.querySelector('[data-field="server"]');
  if (server) server.textContent = status.serverUrl ?? '';

  const connection = root.querySelector('[data-field="connection"]');
  connection.dataset.state = status.connection;
  connection.textContent = chrome.i18n.getMessage(`connection_${status.connection.replaceAll('-', '_')}`);

  const heartbeat = root.querySelector('[data-field="last-heartbeat"]');
  heartbeat.dataset.at = status.lastHeartbeatAt ?? '';
  heartbeat.textContent = status.lastHeartbeatAt
    ? new Date(status.lastHeartbeatAt).toLocaleString(chrome.i18n.getUILanguage())
    : chrome.i18n.getMessage('lastHeartbeatNever');

  const outbox = root.querySelector('[data-field="outbox"]');
  if (outbox) {
    outbox.dataset.count = String(status.outbox ?? 0);
    outbox.textContent = (status.outbox ?? 0).toLocaleString(chrome.i18n.getUILanguage());
  }

  const rules = root.querySelector('[data-field="rules-version"]');
  if (rules) {
    rules.dataset.version = status.rulesVersion == null ? '' : String(status.rulesVersion);
    rules.textContent = status.rulesVersion == null
      ? chrome.i18n.getMessage('rulesVersionNone')
      : String(status.rulesVersion);
  }
}
