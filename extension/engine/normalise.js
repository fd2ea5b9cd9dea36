// Normalisation: the original text becomes streams the matchers read, each position mapped back.
//
// Every step works per code point and keeps, for each output character, the index of the original code
// point it came from, so findings are reported in code-point offsets of the original text.
// The same steps as backend/engine/normalise.py (shared_rules/README.md, "Normalisation").
//
// Speed: what each code point becomes is worked out once and cached in typed arrays (see CodePointCache),
// so a message is read one UTF-16 unit at a time with one array read per character, and the streams are
// typed arrays of code points: no one-character strings, no regular expression per character.

import { UnassignedCodePoints } from './unassigned.js';

export const ZERO_WIDTH = new Set([
  '\u200b', '\u200c', '\u200d', '\u2060', '\ufeff', '\u00ad', '\u180e', '\u2061', '\u2062', '\u2063',
]);

const WORD_CHAR = /[\p{L}\p{N}]/u;
const NONSPACING_MARK = /\p{Mn}/u;

// What a code point becomes, as a CodePointCache holds it: a code point (>= 0) when it becomes exactly
// one, else one of these.
const UNKNOWN = -1; // not worked out yet
const NOTHING = -2; // vanishes: a zero-width character, which is not a separator either
const SEPARATOR = -3; // (skeleton) no letter or digit: the words on either side are apart
const SEQUENCE = -4; // -4 - k: several, the cache's sequences[k] ("ﬁ" becomes f, i)
const MAX_ASTRAL_ENTRIES = 65536; // past this, rare astral characters are worked out every time

// Per-code-point answers: an Int32Array over the BMP, a Map above it; filled on first sight.
export class CodePointCache {
  // compute: code point → array of code points (and, for the skeleton, SEPARATOR).
  constructor(compute) {
    this.compute = compute;
    this.bmp = new Int32Array(0x10000).fill(UNKNOWN);
    this.astral = new Map();
    this.sequences = [];
    this.sequenceIndex = new Map(); // the same sequence is stored once, however many code points make it
  }

  get(cp) {
    const code = cp < 0x10000 ? this.bmp[cp] : (this.astral.get(cp) ?? UNKNOWN);
    return code === UNKNOWN ? this.learn(cp) : code;
  }

  learn(cp) {
    const code = this.encode(this.compute(cp));
    if (cp < 0x10000) this.bmp[cp] = code;
    else if (this.astral.size < MAX_ASTRAL_ENTRIES) this.astral.set(cp, code);
    return code;
  }

  encode(items) {
    if (items.length === 0) return NOTHING;
    if (items.length === 1) return items[0];
    const key = items.join(',');
    let k = this.sequenceIndex.get(key);
    if (k === undefined) {
      k = this.sequences.length;
      this.sequences.push(Int32Array.from(items));
      this.sequenceIndex.set(key, k);
    }
    return SEQUENCE - k;
  }
}

// Per-character tables from the payload: look-alikes, traditional→simplified and the word fold, and the
// code points the Python engine's Unicode leaves unassigned (payload.unicode).
export class Tables {
  constructor({ confusables, t2s, fold }, unicode) {
    this.confusables = new Map(Object.entries(confusables));
    this.t2s = new Map(Object.entries(t2s));
    this.fold = new Map(Object.entries(fold));
    this.unassigned = new UnassignedCodePoints(unicode);
    this.plainCodes = new CodePointCache((cp) => plainPoints(cp, this));
    this.skeletonCodes = new CodePointCache((cp) => skeletonPoints(cp, this));
    this.wordCodes = new Uint8Array(0x10000);
  }
}

export function isLatinCode(cp) {
  return cp >= 0x61 && cp <= 0x7a;
}

function isAsciiDigitCode(cp) {
  return cp >= 0x30 && cp <= 0x39;
}

// Letters and digits of any script are kept; everything else separates (spaces, symbols, marks).
export function isWordChar(ch, tables) {
  const cp = ch.codePointAt(0);
  if (cp < 0x80) return isAsciiDigitCode(cp) || isLatinCode(cp) || (cp >= 0x41 && cp <= 0x5a);
  return !tables.unassigned.has(cp) && WORD_CHAR.test(ch);
}

// isWordChar by code point, cached over the BMP (0: not worked out yet, 1: no, 2: yes).
export function isWordCode(cp, tables) {
  if (cp >= 0x10000) return isWordChar(String.fromCodePoint(cp), tables);
  let known = tables.wordCodes[cp];
  if (known === 0) {
    known = isWordChar(String.fromCodePoint(cp), tables) ? 2 : 1;
    tables.wordCodes[cp] = known;
  }
  return known === 2;
}

function stripLatinMarks(c) {
  let out = '';
  for (const d of c.normalize('NFD')) {
    if (!NONSPACING_MARK.test(d)) out += d;
  }
  return out || c;
}

// NFKC, lower case, diacritics off (Latin, Greek, Cyrillic only), look-alikes and traditional mapped.
export function baseChars(ch, tables) {
  if (ZERO_WIDTH.has(ch)) return '';
  // Python's unicodedata leaves its unassigned code points as they are; newer runtimes may not.
  const folded = tables.unassigned.has(ch.codePointAt(0)) ? ch : ch.normalize('NFKC').toLowerCase();
  let out = '';
  for (let c of folded) {
    const cp = c.codePointAt(0);
    if (tables.confusables.has(c)) c = tables.confusables.get(c);
    else if (cp < 0x0530 && cp >= 0x00c0 && !tables.unassigned.has(cp)) c = stripLatinMarks(c);
    const simplified = tables.t2s.get(c);
    out += simplified === undefined ? c : simplified;
  }
  return out;
}

function plainPoints(cp, tables) {
  return Array.from(baseChars(String.fromCodePoint(cp), tables), (c) => c.codePointAt(0));
}

// What the skeleton keeps of one original code point: its plain characters, letters and digits folded,
// anything else a SEPARATOR. A zero-width character leaves nothing at all.
function skeletonPoints(cp, tables) {
  const ch = String.fromCodePoint(cp);
  if (ZERO_WIDTH.has(ch)) return [];
  const items = [];
  for (const c of baseChars(ch, tables)) {
    if (!isWordChar(c, tables)) {
      if (items[items.length - 1] !== SEPARATOR) items.push(SEPARATOR);
      continue;
    }
    const folded = tables.fold.get(c);
    for (const f of folded === undefined ? c : folded) items.push(f.codePointAt(0));
  }
  return items.length ? items : [SEPARATOR];
}

// Strings from code units or code points, in slices small enough for Function.prototype.apply.
const CHUNK = 8192;

function stringOf(fromCodes, codes) {
  if (codes.length <= CHUNK) return fromCodes.apply(null, codes);
  let out = '';
  for (let i = 0; i < codes.length; i += CHUNK) out += fromCodes.apply(null, codes.subarray(i, i + CHUNK));
  return out;
}

// UTF-16 units to a string without the list that apply() makes of them (a quarter of the allocation of a
// check). A decoder replaces surrogates, and a byte-order mark unless told not to: it is used only when
// there are no surrogates. (Typed arrays are little-endian wherever a browser or node runs.)
const UTF16 = typeof TextDecoder === 'function' ? new TextDecoder('utf-16le', { ignoreBOM: true }) : null;

function stringOfUnits(units, surrogates) {
  return UTF16 === null || surrogates ? stringOf(String.fromCharCode, units) : UTF16.decode(units);
}

// The code point that starts at unit i of text: two units above 0xffff, else one (a lone surrogate too).
function codePointAt(text, i) {
  const unit = text.charCodeAt(i);
  if (unit < 0xd800 || unit > 0xdbff || i + 1 >= text.length) return unit;
  const low = text.charCodeAt(i + 1);
  if (low < 0xdc00 || low > 0xdfff) return unit;
  return ((unit - 0xd800) << 10) + (low - 0xdc00) + 0x10000;
}

function grown(array, size) {
  const out = new array.constructor(Math.max(size, array.length * 2));
  out.set(array);
  return out;
}

// Every character normalised, separators kept: what the contact detectors read. `text` is the plain
// string; `points[k]` its k-th code point, which came from the original code point `origin[k]`.
export class PlainStream {
  constructor(text, points, origin, astral) {
    this.text = text;
    this.points = points;
    this.origin = origin;
    this.astral = astral; // whether any character lies beyond the BMP (string and code-point indices differ)
    this.charList = null;
  }

  // One string per code point, made only for the few readers that want them.
  get chars() {
    if (this.charList === null) this.charList = Array.from(this.points, (cp) => String.fromCodePoint(cp));
    return this.charList;
  }
}

// A message much longer than usual gets arrays of its own, which are not kept; nor are arrays that grew
// past KEPT_CAPACITY (a text of ligatures that each become several letters).
const KEPT_LENGTH = 1 << 16;
const KEPT_CAPACITY = 4 * KEPT_LENGTH;

function nextCapacity(size, length) {
  return Math.max(length + 16, Math.min(size * 2, KEPT_LENGTH));
}

// One ArrayBuffer for a writer's arrays: allocating a typed array costs more than filling it. For the
// same reason an engine hands its own writers in (see Workspace), which keep their arrays from one message
// to the next.
class PlainWriter {
  constructor(capacity) {
    this.allocate(capacity);
  }

  allocate(capacity) {
    const buffer = new ArrayBuffer(capacity * 10);
    this.points = new Int32Array(buffer, 0, capacity);
    this.origin = new Int32Array(buffer, capacity * 4, capacity);
    this.units = new Uint16Array(buffer, capacity * 8, capacity);
  }

  // Ready to write the stream of a text of `length` units (overwriting the stream written before).
  start(length) {
    const size = this.points.length;
    if (size < length + 16 || size > KEPT_CAPACITY) this.allocate(nextCapacity(size, length));
    this.unitCount = 0;
    this.count = 0;
    this.astral = false;
    this.surrogates = false; // any unit in D800–DFFF: a pair or a lone one
    return this;
  }

  // Room for `units` more UTF-16 units (and as many code points).
  reserve(units) {
    const size = this.unitCount + units;
    if (size <= this.units.length) return;
    this.units = grown(this.units, size);
    this.points = grown(this.points, size);
    this.origin = grown(this.origin, size);
  }

  add(cp, index) {
    if (cp < 0xd800 || (cp > 0xdfff && cp < 0x10000)) {
      this.units[this.unitCount++] = cp;
    } else if (cp < 0x10000) {
      this.units[this.unitCount++] = cp;
      this.surrogates = true;
    } else {
      this.units[this.unitCount++] = 0xd800 + ((cp - 0x10000) >> 10);
      this.units[this.unitCount++] = 0xdc00 + ((cp - 0x10000) & 0x3ff);
      this.astral = true;
      this.surrogates = true;
    }
    this.points[this.count] = cp;
    this.origin[this.count++] = index;
  }

  // original: the text read, when every character of it stayed as it was (then it is the plain text).
  stream(original) {
    const text = original ?? stringOfUnits(this.units.subarray(0, this.unitCount), this.surrogates);
    return new PlainStream(text, this.points.subarray(0, this.count), this.origin.subarray(0, this.count),
      this.astral);
  }
}

// An engine's writers, reused for every message it reads. A stream or skeleton written with them is good
// until the next one: the engine reads each within one call and keeps nothing of it.
export class Workspace {
  constructor() {
    this.plain = new PlainWriter(1024);
    this.skeleton = new SkeletonWriter(1024);
  }
}


export function plainStream(text, tables, workspace = null) {
  const cache = tables.plainCodes;
  const bmp = cache.bmp;
  // Most characters become one BMP character: the writer then never holds more units than read so far.
  const writer = workspace !== null && text.length <= KEPT_LENGTH ? workspace.plain : null;
  const out = (writer ?? new PlainWriter(text.length + 16)).start(text.length);
  let unchanged = true;
  let index = 0;
  for (let i = 0; i < text.length; i++, index++) {
    const cp = codePointAt(text, i);
    if (cp > 0xffff) i++;
    let code = cp < 0x10000 ? bmp[cp] : UNKNOWN;
    if (code === UNKNOWN) code = cache.get(cp);
    if (code >= 0) {
      if (code > 0xffff) out.reserve(2 + text.length - i); // two units, perhaps for one read
      out.add(code, index);
      if (code !== cp) unchanged = false;
    } else {
      unchanged = false;
      if (code !== NOTHING) {
        const items = cache.sequences[SEQUENCE - code];
        out.reserve(2 * items.length + text.length - i);
        for (const item of items) out.add(item, index);
      }
    }
  }
  return out.stream(unchanged ? text : null);
}

// The word matcher's stream: separators dropped, the fold applied, repeated non-Latin characters
// collapsed. `points[k]` is the k-th skeleton code point, from the original code point `origin[k]`;
// `gapBefore[k]` is 1 when a separator stood before it in the original.
export class Skeleton {
  constructor(points, origin, gapBefore) {
    this.points = points;
    this.origin = origin;
    this.gapBefore = gapBefore;
  }

  get text() {
    return stringOf(String.fromCodePoint, this.points);
  }
}

class SkeletonWriter {
  constructor(capacity) {
    this.allocate(capacity);
  }

  allocate(capacity) {
    const buffer = new ArrayBuffer(capacity * 9);
    this.points = new Int32Array(buffer, 0, capacity);
    this.origin = new Int32Array(buffer, capacity * 4, capacity);
    this.gapBefore = new Uint8Array(buffer, capacity * 8, capacity);
  }

  // Ready to write the skeleton of a text of `length` units (overwriting the skeleton written before).
  start(length) {
    const size = this.points.length;
    if (size < length + 16 || size > KEPT_CAPACITY) this.allocate(nextCapacity(size, length));
    this.count = 0;
    this.gap = 1; // the start of the text is a boundary
    return this;
  }

  reserve(more) {
    const size = this.count + more;
    if (size <= this.points.length) return;
    this.points = grown(this.points, size);
    this.origin = grown(this.origin, size);
    this.gapBefore = grown(this.gapBefore, size);
  }

  add(cp, index) {
    const count = this.count;
    // "私私下下" reads as "私下"; Latin doubles ("guaranteed") are English, and digits stay. A separator
    // before the dropped repeat still counts for the next character kept.
    if (count > 0 && this.points[count - 1] === cp && !isLatinCode(cp) && !isAsciiDigitCode(cp)) return;
    this.points[count] = cp;
    this.origin[count] = index;
    this.gapBefore[count] = this.gap;
    this.gap = 0;
    this.count = count + 1;
  }

  skeleton() {
    const n = this.count;
    return new Skeleton(this.points.subarray(0, n), this.origin.subarray(0, n), this.gapBefore.subarray(0, n));
  }
}

export function skeleton(text, tables, workspace = null) {
  const cache = tables.skeletonCodes;
  const bmp = cache.bmp;
  // A character adds at most one code point unless it is a sequence, which reserves its own room.
  const writer = workspace !== null && text.length <= KEPT_LENGTH ? workspace.skeleton : null;
  const out = (writer ?? new SkeletonWriter(text.length + 16)).start(text.length);
  let index = 0;
  for (let i = 0; i < text.length; i++, index++) {
    const cp = codePointAt(text, i);
    if (cp > 0xffff) i++;
    let code = cp < 0x10000 ? bmp[cp] : UNKNOWN;
    if (code === UNKNOWN) code = cache.get(cp);
    if (code >= 0) {
      out.add(code, index);
    } else if (code === SEPARATOR) {
      out.gap = 1;
    } else if (code !== NOTHING) {
      const items = cache.sequences[SEQUENCE - code];
      out.reserve(items.length + text.length - i);
      for (const item of items) {
        if (item === SEPARATOR) out.gap = 1;
        else out.add(item, index);
      }
    }
  }
  return out.skeleton();
}

// A dictionary word as the skeleton would read it.
export function foldWord(word, tables) {
  return skeleton(word, tables).text;
}
