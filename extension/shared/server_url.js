// Plain http is only accepted for the agent's own machine: anywhere else the
// device token would cross the network in clear, and the manifest grants
// plain-http host access to loopback only.
const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

function isLoopback(hostname) {
  return LOOPBACK_HOSTS.has(hostname) || hostname.endsWith('.localhost');
}

/**
 * Turns what the agent typed into the server's base URL (no trailing slash),
 * or explains why it cannot be used.
 * @returns {{ok: true, url: string} | {ok: false, reason: 'empty'|'invalid'|'scheme'|'insecure'}}
 */
export function normaliseServerUrl(input) {
  const text = String(input ?? '').trim();
  if (text === '') return { ok: false, reason: 'empty' };

  let candidate = text;
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(candidate)) {
    const host = candidate.split(/[/:?#]/, 1)[0].toLowerCase();
    candidate = `${isLoopback(host) ? 'http' : 'https'}://${candidate}`;
  }

  let url;
  try {
    url = new URL(candidate);
  } catch {
    return { ok: false, reason: 'invalid' };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return { ok: false, reason: 'scheme' };
  if (!url.hostname || url.username || url.password || url.search || url.hash) {
    return { ok: false, reason: 'invalid' };
  }
  if (url.protocol === 'http:' && !isLoopback(url.hostname)) return { ok: false, reason: 'insecure' };

  const path = url.pathname.replace(/\/+$/, '');
  return { ok: true, url: `${url.origin}${path}` };
}

/**
 * Socket.IO reads the URL's path as the namespace, so a server mounted under a
 * path prefix needs the prefix moved into the engine path instead.
 */
export function socketEndpoint(serverUrl, namespace) {
  const url = new URL(serverUrl);
  const prefix = url.pathname.replace(/\/+$/, '');
  return { url: `${url.origin}${namespace}`, path: `${prefix}/socket.io` };
}
