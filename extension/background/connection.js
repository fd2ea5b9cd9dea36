import { reconnectDelay } from './backoff.js';
import { socketEndpoint } from '../shared/server_url.js';

const NAMESPACE = '/agent';
// Under Chrome's ~30 s idle limit, so the worker is never idle while connected.
const HEARTBEAT_INTERVAL_MS = 20_000;
const ACK_TIMEOUT_MS = 10_000;
const CONNECT_TIMEOUT_MS = 10_000;

function describe(enrolment) {
  if (!enrolment) {
    return {
      enrolled: false, connection: 'not-enrolled', serverUrl: null, deviceId: null, deviceLabel: '',
      agentEmail: '', agentName: '', tenantName: '', lastHeartbeatAt: null,
    };
  }
  return {
    enrolled: true,
    serverUrl: enrolment.serverUrl,
    deviceId: enrolment.device.id,
    deviceLabel: enrolment.device.label,
    agentEmail: enrolment.agent.email,
    agentName: enrolment.agent.displayName,
    tenantName: enrolment.tenant.name,
  };
}

/**
 * The device's Socket.IO link to the server's /agent namespace. It keeps no
 * state the worker cannot rebuild from `store`, because Chrome stops the
 * worker whenever it likes; `start` is safe to call from every wake-up path.
 * `io` is socket.io-client's factory, passed in so node's tests can fake it.
 * `onConnected(socket, enrolment)` and `onDisconnected()` let the event stream
 * and the rules cache use the link; `report` adds their state to the status.
 */
export function createConnection({ io, store, onStatus, timers = globalThis, onConnected = () => {},
  onDisconnected = () => {} }) {
  let socket = null;
  let heartbeatTimer = null;
  let retryTimer = null;
  let attempt = 0;
  let starting = null;
  // What the other parts of the worker report: events waiting in the outbox, the cached rules' version.
  let reported = { outbox: 0, rulesVersion: null };
  let status = { ...describe(null), ...reported };

  function publish(changes) {
    status = { ...status, ...changes };
    onStatus({ ...status });
  }

  function report(changes) {
    reported = { ...reported, ...changes };
    publish(changes);
  }

  function closeSocket() {
    timers.clearInterval(heartbeatTimer);
    heartbeatTimer = null;
    if (socket) {
      const old = socket;
      socket = null;
      old.off();
      old.disconnect();
      onDisconnected();
    }
  }

  function scheduleRetry() {
    closeSocket();
    publish({ connection: 'disconnected' });
    retryTimer = timers.setTimeout(() => {
      retryTimer = null;
      start();
    }, reconnectDelay(attempt++));
  }

  function sendHeartbeat(current) {
    current.timeout(ACK_TIMEOUT_MS).emit('heartbeat', { sent_at: new Date().toISOString() }, async (err, ack) => {
      // A missed ack is not acted on: Socket.IO's ping notices a dead link by itself.
      if (err || current !== socket || ack?.ok !== true) return;
      const at = new Date().toISOString();
      await store.saveLastHeartbeat(at);
      publish({ lastHeartbeatAt: at });
    });
  }

  function open(enrolment) {
    const { url, path } = socketEndpoint(enrolment.serverUrl, NAMESPACE);
    const current = io(url, {
      path,
      transports: ['websocket'],
      auth: { token: enrolment.token },
      reconnection: false,
      forceNew: true,
      timeout: CONNECT_TIMEOUT_MS,
    });
    socket = current;
    publish({ connection: 'connecting' });

    current.on('connect', () => {
      attempt = 0;
      publish({ connection: 'connected' });
      sendHeartbeat(current);
      heartbeatTimer = timers.setInterval(() => sendHeartbeat(current), HEARTBEAT_INTERVAL_MS);
      onConnected(current, enrolment);
    });
    current.on('connect_error', () => {
      if (current !== socket) return;
      // An inactive socket here means the server itself said no (bad or revoked token):
      // retrying would only be refused again, so wait for a new enrolment.
      if (!current.active) {
        closeSocket();
        publish({ connection: 'refused' });
        return;
      }
      scheduleRetry();
    });
    current.on('disconnect', (reason) => {
      if (current !== socket || reason === 'io client disconnect') return;
      scheduleRetry();
    });
  }

  async function connectFromStore() {
    const enrolment = await store.loadEnrolment();
    const lastHeartbeatAt = enrolment ? await store.loadLastHeartbeat() : null;
    publish({ ...describe(enrolment), lastHeartbeatAt });
    if (enrolment && !socket && !retryTimer && status.connection !== 'refused') open(enrolment);
  }

  /** Connects if enrolled and not already connected, connecting or waiting to retry. */
  function start() {
    if (socket || retryTimer) return Promise.resolve();
    starting ??= connectFromStore().finally(() => {
      starting = null;
    });
    return starting;
  }

  /** Drops any current link and starts again from what is stored, e.g. after enrolment. */
  async function restart() {
    await starting;
    closeSocket();
    timers.clearTimeout(retryTimer);
    retryTimer = null;
    attempt = 0;
    status = { ...describe(null), ...reported };
    return start();
  }

  return { start, restart, report, getStatus: () => ({ ...status }) };
}
