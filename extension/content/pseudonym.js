// Stable pseudonyms for customers whose name on screen is their identifier ("+86 138 1234 5678" shown as
// "@客户-3F9A2C"): the same identifier always gives the same pseudonym, so agents can still tell
// customers apart without reading the number.
//
// The hash is synchronous (masking happens before paint, and crypto.subtle is asynchronous) and salted
// per tenant; 24 bits leave hundreds of phone numbers behind each pseudonym, so it cannot be reversed
// by trying every number, while two customers of one agent almost never share one.

export const PSEUDONYM_PREFIX = '@客户-';

// One identifier, however it is written: phone numbers by their digits (without a 00 prefix), others
// in lower case without spaces.
export function normaliseIdentifier(text) {
  const folded = text.normalize('NFKC').toLowerCase();
  if (/[a-z@]/.test(folded)) return folded.replace(/[^0-9a-z@._-]/g, '');
  return folded.replace(/\D/g, '').replace(/^00/, '');
}

// cyrb53: a fast, well-mixed 53-bit string hash (public domain, bryc).
function cyrb53(text, seed = 0) {
  let h1 = 0xdeadbeef ^ seed;
  let h2 = 0x41c6ce57 ^ seed;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

export function pseudonym(identifier, salt = '') {
  const hex = cyrb53(`${salt}\u0000${normaliseIdentifier(identifier)}`).toString(16).padStart(14, '0');
  return `${PSEUDONYM_PREFIX}${hex.slice(-6).toUpperCase()}`;
}
