// Asks the server for the pseudonyms of customers whose name on screen is their identifier, so the
// extension shows the name the panel uses (the server keys it with a secret the extension never holds).

const TIMEOUT_MS = 5000;
const MAX_PER_REQUEST = 50; // the server's limit (backend/services/conversations.py)

export function createPseudonymLookup() {
  let socket = null;

  async function lookup(identifiers) {
    if (!socket?.connected) return { ok: false, error: { code: 'offline' } };
    const asked = [...new Set((identifiers ?? []).filter((i) => typeof i === 'string' && i))].slice(0, MAX_PER_REQUEST);
    if (asked.length === 0) return { ok: true, pseudonyms: {} };
    try {
      const answer = await socket.timeout(TIMEOUT_MS).emitWithAck('pseudonyms', { identifiers: asked });
      return answer?.ok ? { ok: true, pseudonyms: answer.pseudonyms } : { ok: false, error: answer?.error };
    } catch {
      return { ok: false, error: { code: 'timeout' } };
    }
  }

  return {
    attach(current) {
      socket = current;
    },
    detach() {
      socket = null;
    },
    lookup,
  };
}
