// Normalisation: the original text becomes streams the matchers read, each position mapped back.
//
// Every step works per code point and keeps, for each output character, the index of the original code
// point it came from, so findings are reported in code-point offsets of the original text.
// The same steps as backend/engine/normalise.py (shared_rules/README.md, "Normalisation").

import { isUnassigned } from './unassigned.js';

export const ZERO_WIDTH = new Set([
  '\u200b', '\u200c', '\u200d', '\u2060', '\ufeff', '\u00ad', '\u180e', '\u2061', '\u2062', '\u2063',
]);

const WORD_CHAR = /[\p{L}\p{N}]/u;
const NONSPACING_MARK = /\p{Mn}/u;

// Per-character tables from the payload: look-alikes, traditional→simplified and the word fold.
export class Tables {
  constructor({ confusables, t2s, fold }) {
    this.confusables = new Map(Object.entries(confusables));
    this.t2s = new Map(Object.entries(t2s));
    this.fold = new Map(Object.entries(fold));
    this.baseCache = new Map();
  }
}

// Letters and digits of any script are kept; everything else separates (spaces, symbols, marks).
export function isWordChar(ch) {
  const cp = ch.codePointAt(0);
  if (cp < 0x80) return (cp >= 0x30 && cp <= 0x39) || (cp >= 0x61 && cp <= 0x7a) || (cp >= 0x41 && cp <= 0x5a);
  return !isUnassigned(cp) && WORD_CHAR.test(ch);
}

function stripLatinMarks(c) {
  let out = '';
  for (const d of c.normalize('NFD')) {
    if (!NONSPACING_MARK.test(d)) out += d;
  }
  return out || c;
}

function computeBase(ch, tables) {
  if (ZERO_WIDTH.has(ch)) return '';
  // Python's unicodedata leaves its unassigned code points as they are; newer runtimes may not.
  const folded = isUnassigned(ch.codePointAt(0)) ? ch : ch.normalize('NFKC').toLowerCase();
  let out = '';
  for (let c of folded) {
    const cp = c.codePointAt(0);
    if (tables.confusables.has(c)) c = tables.confusables.get(c);
    else if (cp < 0x0530 && cp >= 0x00c0 && !isUnassigned(cp)) c = stripLatinMarks(c);
    const simplified = tables.t2s.get(c);
    out += simplified === undefined ? c : simplified;
  }
  return out;
}

// NFKC, lower case, diacritics off (Latin, Greek, Cyrillic only), look-alikes and traditional mapped.
export function baseChars(ch, tables) {
  let out = tables.baseCache.get(ch);
  if (out === undefined) {
    out = computeBase(ch, tables);
    if (tables.baseCache.size < 65536) tables.baseCache.set(ch, out);
  }
  return out;
}

// Normalised characters (code points, as strings) and, for each, the index of the original code point.
export class Stream {
  constructor(chars, origin) {
    this.chars = chars;
    this.origin = origin;
  }

  get text() {
    return this.chars.join('');
  }
}

// Every character normalised, separators kept: what the contact detectors read.
export function plainStream(text, tables) {
  const chars = [];
  const origin = [];
  let index = 0;
  for (const ch of text) {
    for (const c of baseChars(ch, tables)) {
      chars.push(c);
      origin.push(index);
    }
    index += 1;
  }
  return new Stream(chars, origin);
}

export function isLatin(ch) {
  return ch >= 'a' && ch <= 'z';
}

function isAsciiDigit(ch) {
  return ch >= '0' && ch <= '9';
}

// The word matcher's stream: separators dropped, the fold applied, repeated non-Latin characters collapsed.
// Returns the stream and, per kept character, whether a separator stood before it in the original.
export function skeleton(text, tables) {
  const chars = [];
  const origin = [];
  const gapBefore = [];
  let gap = true;
  let index = -1;
  for (const ch of text) {
    index += 1;
    const mapped = baseChars(ch, tables);
    if (ZERO_WIDTH.has(ch)) continue; // invisible: neither a character nor a separator
    for (let c of mapped) {
      if (!isWordChar(c)) {
        gap = true;
        continue;
      }
      const folded = tables.fold.get(c);
      if (folded !== undefined) c = folded;
      if (chars.length && chars[chars.length - 1] === c && !isLatin(c) && !isAsciiDigit(c)) {
        continue; // "私私下下" reads as "私下"; Latin doubles ("guaranteed") are English
      }
      chars.push(c);
      origin.push(index);
      gapBefore.push(gap);
      gap = false;
    }
    if (!mapped) gap = true;
  }
  return { stream: new Stream(chars, origin), gapBefore };
}

// A dictionary word as the skeleton would read it.
export function foldWord(word, tables) {
  return skeleton(word, tables).stream.text;
}
