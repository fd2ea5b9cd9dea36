// The worker's half of revealing a masked identifier (docs/protocol.md, "reveal"): it forwards a content
// script's request to the server, which checks the agent's restore key, and tells every console tab when
// the agent's grants change (`grants_changed`), so a revealed identifier is hidden again at once.
//
// The original never passes through here: the content script sends only the chat and a SHA-256 of it.

const TIMEOUT_MS = 5000;
const SPAN_HASH = /^[0-9a-f]{64}$/;
const CHAT_FIELDS = ['console', 'account', 'key', 'customer'];

/** `notifyTabs()` tells the console tabs to drop what they revealed. */
export function createReveals({ notifyTabs = () => {} } = {}) {
  let socket = null;

  const onGrantsChanged = () => notifyTabs();

  async function reveal(chat, spanHash) {
    if (typeof spanHash !== 'string' || !SPAN_HASH.test(spanHash) || !chat || typeof chat !== 'object') {
      return { ok: false, error: { code: 'invalid_value' } };
    }
    // Only the fields the server reads, and only strings: a content script's object is passed on as data.
    const question = {};
    for (const name of CHAT_FIELDS) if (typeof chat[name] === 'string' && chat[name]) question[name] = chat[name];
    if (!socket?.connected) return { ok: false, error: { code: 'offline' } };
    return socket.timeout(TIMEOUT_MS).emitWithAck('reveal', { chat: question, span_hash: spanHash })
      .catch(() => ({ ok: false, error: { code: 'timeout' } }));
  }

  return {
    attach(current) {
      socket = current;
      current.on('grants_changed', onGrantsChanged);
    },
    detach() {
      socket?.off?.('grants_changed', onGrantsChanged);
      socket = null;
      notifyTabs(); // offline: nothing can be checked, so nothing stays revealed
    },
    reveal,
  };
}
