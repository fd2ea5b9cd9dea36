const CODE_LENGTH = 8;
const GROUP_LENGTH = 4;

/**
 * Accepts a code the way people type or paste it (lower case, spaces, any
 * kind of dash, full-width characters from a CJK input method) and returns it
 * in the canonical `XXXX-XXXX` form the server issues.
 * @returns {{ok: true, code: string} | {ok: false, reason: 'empty'|'invalid'}}
 */
export function normaliseEnrolmentCode(input) {
  const compact = String(input ?? '')
    .normalize('NFKC')
    .toUpperCase()
    .replace(/[\s\-\u2010-\u2015\u2212\u30FC]/gu, '');
  if (compact === '') return { ok: false, reason: 'empty' };
  if (compact.length !== CODE_LENGTH || !/^[A-Z0-9]+$/.test(compact)) return { ok: false, reason: 'invalid' };

  const groups = [];
  for (let i = 0; i < compact.length; i += GROUP_LENGTH) groups.push(compact.slice(i, i + GROUP_LENGTH));
  return { ok: true, code: groups.join('-') };
}
