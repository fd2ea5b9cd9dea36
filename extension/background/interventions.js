// The worker's half of supervisor replies (interventions, docs/protocol.md): it keeps the replies the
// server handed this device, tells the server each one arrived, and lets content scripts ask which chat
// is open, claim a reply and report how sending it went. Which tab sends is the content scripts' call:
// only the one showing the reply's chat does, and the server lets one device claim it.
//
// Nothing here survives the worker being stopped, and nothing needs to: the server asks every device
// that connects to collect what is still waiting (`pending_interventions`).

const TIMEOUT_MS = 5000;
const MAX_TEXT = 4096;
const REPORTS = ['sending', 'sent', 'failed'];

function readIntervention(data, now) {
  const conversation = data?.conversation;
  const expires = Date.parse(data?.expires_at);
  if (!Number.isInteger(data?.id) || typeof data.text !== 'string' || !data.text || data.text.length > MAX_TEXT) return null;
  if (!Number.isInteger(conversation?.id) || typeof conversation.platform !== 'string') return null;
  if (!Number.isFinite(expires) || expires <= now) return null;
  return {
    id: data.id,
    text: data.text,
    expiresAt: expires,
    conversation: {
      id: conversation.id,
      platform: conversation.platform,
      account: typeof conversation.account === 'string' ? conversation.account : '',
      pseudonym: typeof conversation.customer_pseudonym === 'string' ? conversation.customer_pseudonym : '',
    },
  };
}

/**
 * `notifyTabs()` tells the console tabs that the list changed (they then ask for it);
 * `now` is injectable for tests.
 */
export function createInterventions({ notifyTabs = () => {}, now = () => Date.now() } = {}) {
  let socket = null;
  const pending = new Map(); // id -> intervention
  const claims = new Map(); // id -> the tab and frame sending it

  function ask(event, payload) {
    if (!socket?.connected) return Promise.resolve({ ok: false, error: { code: 'offline' } });
    return socket.timeout(TIMEOUT_MS).emitWithAck(event, payload)
      .catch(() => ({ ok: false, error: { code: 'timeout' } }));
  }

  function keep(data) {
    const intervention = readIntervention(data, now());
    if (!intervention) return false;
    pending.set(intervention.id, intervention);
    // The server hears that the reply reached the agent's browser; it is not claimed yet.
    ask('intervention_status', { id: intervention.id, status: 'delivered' });
    return true;
  }

  function onIntervene(data) {
    if (keep(data)) notifyTabs();
  }

  async function collect(current) {
    const answer = await current.timeout(TIMEOUT_MS).emitWithAck('pending_interventions', null).catch(() => null);
    if (current !== socket || !answer?.ok || !Array.isArray(answer.interventions)) return;
    // The server's list is what is still open; a reply a tab here has claimed is not on it any more.
    for (const id of pending.keys()) if (!claims.has(id)) pending.delete(id);
    for (const data of answer.interventions) keep(data);
    notifyTabs();
  }

  function list() {
    const at = now();
    for (const [id, intervention] of pending) {
      if (intervention.expiresAt > at) continue;
      pending.delete(id);
      claims.delete(id);
    }
    return [...pending.values()];
  }

  /** A content script's report; `from` names its tab and frame, so only one of them claims a reply. */
  async function report(id, status, error, from = null) {
    if (!pending.has(id) || !REPORTS.includes(status)) return { ok: false, error: { code: 'unknown' } };
    if (status === 'sending') {
      const holder = claims.get(id);
      if (holder !== undefined && holder !== from) return { ok: true, status: 'delivered', claimed: false };
      claims.set(id, from); // before the round trip, so a second tab asking meanwhile is refused
    }
    const payload = { id, status };
    if (typeof error === 'string' && error) payload.error = error.slice(0, 200);
    const answer = await ask('intervention_status', payload);
    // After `sent` or `failed` the reply is never tried again here, even if the server did not hear it
    // (it does not hand a claimed reply out again either): sending twice is worse than not at all.
    const claimedHere = status === 'sending' && answer?.ok && answer.claimed;
    const keptForLater = status === 'sending' && !answer?.ok && answer?.error?.code !== 'not_found';
    if (status === 'sending' && !claimedHere) claims.delete(id);
    if (!claimedHere && !keptForLater) {
      pending.delete(id);
      claims.delete(id);
      notifyTabs();
    }
    return answer;
  }

  async function resolve(chats) {
    if (!Array.isArray(chats) || chats.length === 0 || chats.length > 20) {
      return { ok: false, error: { code: 'invalid_value' } };
    }
    return ask('resolve_chats', { chats });
  }

  return {
    attach(current) {
      socket = current;
      current.on('intervene', onIntervene);
      collect(current);
    },
    detach() {
      socket?.off?.('intervene', onIntervene);
      socket = null;
    },
    list,
    report,
    resolve,
  };
}
