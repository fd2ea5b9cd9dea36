const ENROL_PATH = '/api/v1/devices/enrol';
const TIMEOUT_MS = 15_000;

export class EnrolmentError extends Error {
  /** `code` is the server's error code, or `unreachable` / `bad_response` when there was no usable answer. */
  constructor(code, message) {
    super(message || code);
    this.name = 'EnrolmentError';
    this.code = code;
  }
}

/**
 * The device's removal link, for chrome.runtime.setUninstallURL, or null when the server sent none.
 * Only its path is kept, on the origin the extension enrolled with: that server is the one this browser
 * can reach, while the server builds the link from its own view of the request (behind a proxy it may
 * name an inside address).
 */
function removalLink(serverUrl, link) {
  if (typeof link !== 'string') return null;
  let path;
  try {
    path = new URL(link).pathname;
  } catch {
    return null;
  }
  return `${new URL(serverUrl).origin}${path}`;
}

/**
 * Trades a one-time enrolment code for a device token.
 * `serverUrl` and `code` must already be normalised.
 */
export async function enrolDevice({ serverUrl, code, label, userAgent, fetchImpl = globalThis.fetch }) {
  const body = { code };
  if (label) body.label = label;
  if (userAgent) body.user_agent = userAgent;

  let response;
  try {
    response = await fetchImpl(`${serverUrl}${ENROL_PATH}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify(body),
      credentials: 'omit',
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
  } catch (error) {
    throw new EnrolmentError('unreachable', error?.message);
  }

  let payload = null;
  try {
    payload = await response.json();
  } catch {
    // Proxies and crashed servers answer with HTML; the status code still says enough.
  }

  if (!response.ok) {
    const error = payload?.error;
    throw new EnrolmentError(
      typeof error?.code === 'string' ? error.code : `http_${response.status}`,
      typeof error?.message === 'string' ? error.message : '',
    );
  }
  if (typeof payload?.token !== 'string' || !payload.token || payload.device?.id == null) {
    throw new EnrolmentError('bad_response', '');
  }
  return {
    serverUrl,
    token: payload.token,
    uninstallUrl: removalLink(serverUrl, payload.uninstall_url),
    device: { id: payload.device.id, label: String(payload.device.label ?? '') },
    agent: {
      id: payload.agent?.id ?? null,
      email: String(payload.agent?.email ?? ''),
      displayName: String(payload.agent?.display_name ?? ''),
    },
    tenant: { id: payload.tenant?.id ?? null, name: String(payload.tenant?.name ?? '') },
  };
}
