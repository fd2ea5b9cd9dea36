// Contact and identifier detectors over the plain stream (normalised, separators kept).
//
// Each detector returns detections in plain-stream indices; the checker maps them to the original text.
// The regular expressions are those of backend/engine/detectors.py, character for character, except the
// two that find digit runs, which a hand-written scanner reads the same way (see digitRuns), and the few
// quick tests that skip a pattern where it cannot match.
//
// Python indexes the plain text by code point, JavaScript by UTF-16 unit. The detectors therefore read a
// "detector text" in which every character outside the BMP stands in for itself with one BMP character
// (see detectorText), so that both index the same way; no pattern or word list gives those characters any
// meaning besides being themselves.

export const CN_DIGITS = new Map(Object.entries({
  '〇': '0', 零: '0', 一: '1', 壹: '1', 幺: '1', 二: '2', 贰: '2', 两: '2', 三: '3', 叁: '3', 四: '4', 肆: '4',
  五: '5', 伍: '5', 六: '6', 陆: '6', 七: '7', 柒: '7', 八: '8', 捌: '8', 九: '9', 玖: '9',
}));
// Order matters: the first word that fits is taken, as in Python's dict.
export const NUMBER_WORDS = [
  ['zero', '0'], ['one', '1'], ['two', '2'], ['three', '3'], ['four', '4'], ['five', '5'], ['six', '6'],
  ['seven', '7'], ['eight', '8'], ['nine', '9'],
];
export const LETTER_DIGITS = new Map([['o', '0'], ['l', '1'], ['i', '1']]);
const RUN_SEPARATORS = new Set([...' \t\n-_.·•~|/\\()[]{}+*,:;\'"`=', '\u3000', '、', '。', '～', '—', '–']);
const MAX_GAP = 3;
// Spans that are numbers but not contacts: dates, times, prices, percentages.
const NOT_CONTACT = (
  String.raw`(?:19|20)[0-9]{2} ?[-/.年] ?[0-9]{1,2} ?[-/.月] ?[0-9]{1,2}(?:日|号)?`
  + String.raw`|(?<![0-9])[0-9]{1,2}:[0-9]{2}(?::[0-9]{2})?(?![0-9])`
  + String.raw`|[¥$€£₹₩] ?[0-9][0-9,]*(?:\.[0-9]+)?`
  // a price and a percentage start where their digits start: tried at every digit (or every digit after a
  // comma) of a long run, they would be quadratic
  + String.raw`|(?<![0-9.,])[0-9][0-9,]*\.[0-9]{1,2}(?![0-9.])`
  + String.raw`|(?<![0-9])[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?`
  + String.raw`|(?<![0-9])[0-9]+(?:\.[0-9]+)? ?%`
);
// ... and two or more "*": a number someone already masked ("138****5678")
const NOT_CONTACT_OR_MASKED = new RegExp(`${NOT_CONTACT}|\\*{2,}`, 'g');
const EMAIL = new RegExp(
  String.raw`(?<![a-z0-9._%+-])([a-z0-9][a-z0-9._%+-]{0,63})`
  + String.raw` ?(@|\(at\)|\[at\]|\{at\}|<at>| at |艾特|圈a) ?`
  + String.raw`([a-z0-9][a-z0-9-]{0,62}(?: ?(?:\.|\(dot\)|\[dot\]|\{dot\}| dot |点) ?[a-z0-9][a-z0-9-]{0,62}){1,4})`,
  'g',
);
// "jane dot doe at …": the words before the matched local part that belong to it, running right up to
// it ("$" without the m flag is Python's "\Z": "jane dot\ndoe at …" is not one local part).
const EMAIL_LOCAL_BEFORE = new RegExp(
  String.raw`(?:[a-z0-9][a-z0-9_%+-]* ?(?:\(dot\)|\[dot\]|\{dot\}| dot ) ?)+$`,
);
const EMAIL_DOT = String.raw` ?(?:\.|\(dot\)|\[dot\]|\{dot\}| dot |点) ?`;
const EMAIL_DOT_SPLIT = new RegExp(EMAIL_DOT);
const EMAIL_DOT_ALL = new RegExp(EMAIL_DOT, 'g');
const LINK = new RegExp(
  String.raw`(?<![a-z0-9.])(?:https?://)?(?:www\.)?(?:t\.me|telegram\.me|telegram\.dog|wa\.me|api\.whatsapp\.com`
  + String.raw`|chat\.whatsapp\.com|line\.me|lin\.ee|m\.me|instagram\.com|u\.wechat\.com|weixin\.qq\.com)`
  + String.raw`/[a-z0-9_+/?=&%.-]*[a-z0-9_]`,
  'g',
);
const WALLET = new RegExp(
  String.raw`(?<![a-z0-9])(?:0x[0-9a-f]{40}|t[1-9a-z]{33}|bc1[02-9ac-hj-np-z]{11,71}|[13][1-9a-z]{25,34})(?![a-z0-9])`,
  'g',
);
const HANDLE_FILLER = /(?: |:|=|@|号码|号|是|账号|id|me|is|my|的)*/y;
const HANDLE_TOKEN = /[a-z0-9][a-z0-9_.-]{3,31}/y;
const REFERENCE_TRAILER = ' :：#号是为';

export function isLatinLetter(ch) {
  return ch >= 'a' && ch <= 'z';
}

export function isDigit(ch) {
  return ch >= '0' && ch <= '9';
}

// One BMP character per code point: astral characters that a word list names get their own stand-in
// (from `named`), every other one the same generic stand-in, which no pattern or list mentions.
export class AstralStandIns {
  constructor(wordLists) {
    const used = new Set();
    const astral = new Set();
    for (const list of wordLists) {
      for (const word of list) {
        for (const ch of word) {
          used.add(ch);
          if (ch.length > 1) astral.add(ch);
        }
      }
    }
    const free = [];
    for (let cp = 0xfdd0; cp <= 0xfdef; cp++) {
      if (!used.has(String.fromCharCode(cp))) free.push(String.fromCharCode(cp));
    }
    if (free.length < astral.size + 1) throw new Error('detector word lists use too many astral characters');
    this.generic = free[0];
    this.named = new Map([...astral].map((ch, index) => [ch, free[index + 1]]));
  }

  of(ch) {
    return this.named.get(ch) ?? this.generic;
  }

  word(text) {
    let out = '';
    for (const ch of text) out += ch.length > 1 ? this.of(ch) : ch;
    return out;
  }
}

// The plain stream's characters joined so that string indices are code-point indices.
export function detectorText(chars, standIns) {
  let out = '';
  for (const ch of chars) out += ch.length > 1 ? standIns.of(ch) : ch;
  return out;
}

// Digit runs are read by hand, one UTF-16 unit at a time, rather than with Python's DIGIT_RUN and
// DIGIT_TOKEN patterns (backend/engine/detectors.py): the patterns made a match array per digit and a
// string per run, most of the allocation of a check. The scanner reads exactly what they match:
//   run    = DIGIT LETTER* ([separator]{0,3} DIGIT LETTER*)*
//   DIGIT  = [0-9] | a Chinese numeral | (?<![a-z])(zero|one|…|nine)(?![a-z])
//   LETTER = [oli] not followed by another Latin letter (so it never starts "one")
// Each part either takes what is there or stops, so the greedy reading is the only one; and the tokens
// DIGIT_TOKEN finds inside a run are exactly its DIGITs and LETTERs.
const DIGIT_VALUE = new Int8Array(0x10000).fill(-1); // unit → digit for [0-9] and the Chinese numerals
for (let d = 0; d < 10; d++) DIGIT_VALUE[0x30 + d] = d;
for (const [ch, digit] of CN_DIGITS) DIGIT_VALUE[ch.charCodeAt(0)] = Number(digit);
const RUN_SEPARATOR = new Uint8Array(0x10000);
for (const ch of RUN_SEPARATORS) RUN_SEPARATOR[ch.charCodeAt(0)] = 1;
// For each Latin letter, the number words that start with it (at most two): [codes, digit] pairs.
const NUMBER_WORDS_BY_FIRST = Array.from({ length: 0x80 }, () => []);
for (const [word, digit] of NUMBER_WORDS) {
  NUMBER_WORDS_BY_FIRST[word.charCodeAt(0)].push([Uint16Array.from(word, (c) => c.charCodeAt(0)), Number(digit)]);
}
const LETTER_VALUE = new Int8Array(0x80).fill(-1); // o, l, i
for (const [ch, digit] of LETTER_DIGITS) LETTER_VALUE[ch.charCodeAt(0)] = Number(digit);
const BLOCKED = 2; // "\x02": stands where NOT_CONTACT_OR_MASKED matched; no part of a run

function isLatinCode(unit) {
  return unit >= 0x61 && unit <= 0x7a;
}

// Reused between calls (the engine is synchronous): the masked text's UTF-16 units and the tokens of the
// current run. A message much longer than usual gets arrays of its own, which are not kept.
const KEPT_UNITS = 1 << 16;
const KEPT_TOKENS = 1 << 12;
let maskedUnits = new Uint16Array(1024);
let tokenAt = new Int32Array(64);
let tokenDigit = new Uint8Array(64);

// The length of the DIGIT at p (0 if none); its digit is left in `digitRead`.
let digitRead = 0;
function digitAt(codes, n, p) {
  if (p >= n) return 0;
  const unit = codes[p];
  const value = DIGIT_VALUE[unit];
  if (value >= 0) {
    digitRead = value;
    return 1;
  }
  if (!isLatinCode(unit) || (p > 0 && isLatinCode(codes[p - 1]))) return 0;
  const candidates = NUMBER_WORDS_BY_FIRST[unit];
  for (let c = 0; c < candidates.length; c++) {
    const word = candidates[c][0];
    const end = p + word.length;
    if (end > n || (end < n && isLatinCode(codes[end]))) continue;
    let k = 1;
    while (k < word.length && codes[p + k] === word[k]) k++;
    if (k === word.length) {
      digitRead = candidates[c][1];
      return word.length;
    }
  }
  return 0;
}

function isLetterAt(codes, n, p) {
  if (p >= n) return false;
  const unit = codes[p];
  if (!(unit < 0x80 && LETTER_VALUE[unit] >= 0)) return false;
  const next = p + 1 < n ? codes[p + 1] : 0;
  return !isLatinCode(next) || LETTER_VALUE[next] >= 0;
}

// The text's UTF-16 units, every span of NOT_CONTACT_OR_MASKED overwritten with BLOCKED.
function maskedCodes(text) {
  const n = text.length;
  let codes = maskedUnits;
  if (codes.length < n) {
    codes = new Uint16Array(Math.max(n, codes.length * 2));
    if (codes.length <= KEPT_UNITS) maskedUnits = codes;
  }
  for (let i = 0; i < n; i++) codes[i] = text.charCodeAt(i);
  NOT_CONTACT_OR_MASKED.lastIndex = 0;
  for (let match = NOT_CONTACT_OR_MASKED.exec(text); match !== null; match = NOT_CONTACT_OR_MASKED.exec(text)) {
    codes.fill(BLOCKED, match.index, match.index + match[0].length);
  }
  return codes;
}

// The current run's digits as a string: apply() on a reused plain array, which it reads in place (a typed
// array it would copy first), in slices that stay within the limit on arguments.
const digitUnits = [];
const DIGIT_SLICE = 4096;

function runDigits(count) {
  let out = '';
  for (let from = 0; from < count; from += DIGIT_SLICE) {
    const size = Math.min(DIGIT_SLICE, count - from);
    for (let k = 0; k < size; k++) digitUnits[k] = 0x30 + tokenDigit[from + k];
    digitUnits.length = size;
    out += String.fromCharCode.apply(null, digitUnits);
  }
  return out;
}

function addToken(count, position, digit) {
  if (count === tokenAt.length) {
    const at = new Int32Array(count * 2);
    at.set(tokenAt);
    tokenAt = at;
    const digits = new Uint8Array(count * 2);
    digits.set(tokenDigit);
    tokenDigit = digits;
  }
  tokenAt[count] = position;
  tokenDigit[count] = digit;
  return count + 1;
}

// Whether the last character before `start` that is not a space, within three, is "+".
function plusBefore(text, start) {
  for (let i = start - 1; i >= Math.max(0, start - 3); i--) {
    const unit = text.charCodeAt(i);
    if (unit !== 0x20) return unit === 0x2b;
  }
  return false;
}

// Digits (in any disguise) separated only by short runs of separators.
export function digitRuns(text) {
  const n = text.length;
  const codes = maskedCodes(text);
  const runs = [];
  let p = 0;
  while (p < n) {
    const unit = codes[p];
    // most characters can start no DIGIT: not a digit, and not a Latin letter that starts a word
    let length = DIGIT_VALUE[unit] < 0 && (!isLatinCode(unit) || (p > 0 && isLatinCode(codes[p - 1])))
      ? 0 : digitAt(codes, n, p);
    if (length === 0) {
      p++;
      continue;
    }
    const runStart = p;
    let count = addToken(0, p, digitRead);
    let letters = 0;
    let q = p + length;
    let asWritten = length === 1 && unit >= 0x30 && unit <= 0x39; // so far nothing but ASCII digits
    for (;;) {
      while (isLetterAt(codes, n, q)) {
        count = addToken(count, q, LETTER_VALUE[codes[q]]);
        letters++;
        q++;
        asWritten = false;
      }
      let s = q;
      while (s < n && s - q < MAX_GAP && RUN_SEPARATOR[codes[s]]) s++;
      length = digitAt(codes, n, s);
      if (length === 0) break;
      count = addToken(count, s, digitRead);
      if (s !== q || length !== 1 || DIGIT_VALUE[codes[s]] !== codes[s] - 0x30) asWritten = false;
      q = s + length;
    }
    p = q; // the run is [runStart, q)
    if (count - letters < letters) continue; // mostly letters: a word, not a number
    let start = runStart;
    const international = plusBefore(text, start);
    if (international) start = text.lastIndexOf('+', start - 1);
    const positions = new Array(count);
    for (let k = 0; k < count; k++) positions[k] = tokenAt[k];
    // a run of plain digits, the common case, is its own digit string
    const digits = asWritten ? text.slice(runStart, q) : runDigits(count);
    runs.push({ digits, positions, start, end: q, international });
  }
  if (tokenAt.length > KEPT_TOKENS) {
    tokenAt = new Int32Array(64);
    tokenDigit = new Uint8Array(64);
  }
  return runs;
}

export function luhnValid(digits) {
  let total = 0;
  for (let index = 0; index < digits.length; index++) {
    let value = digits.charCodeAt(digits.length - 1 - index) - 48;
    if (index % 2) value = value > 4 ? value * 2 - 9 : value * 2;
    total += value;
  }
  return total % 10 === 0;
}

const ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];

export function chinaIdValid(digits17, check) {
  let total = 0;
  for (let index = 0; index < 17; index++) total += (digits17.charCodeAt(index) - 48) * ID_WEIGHTS[index];
  return '10x98765432'[total % 11] === check;
}

// Whether one of `words` lies wholly within the `reach` characters before `start`.
export function contextBefore(text, start, words, reach = 12) {
  const from = Math.max(0, start - reach);
  for (const word of words) {
    const at = text.indexOf(word, from); // the first occurrence from there ends first
    if (at !== -1 && at + word.length <= start) return true;
  }
  return false;
}

// An order, tracking or room number: the keyword stands right before, give or take ":", "号", "#".
export function referenceBefore(text, start, words) {
  let end = start;
  const from = Math.max(0, start - 10);
  while (end > from && REFERENCE_TRAILER.includes(text[end - 1])) end -= 1;
  for (const word of words) {
    if (word.length <= end - from && text.startsWith(word, end - word.length)) return true;
  }
  return false;
}

// Part of a code such as SF1234567890, SKU42177 or 512GB (letters touch the digits).
function attachedToLetters(text, run) {
  const before = run.start > 0 ? text.charCodeAt(run.start - 1) : 0;
  const after = run.end < text.length ? text.charCodeAt(run.end) : 0;
  return isLatinCode(before) || isLatinCode(after) || before === 0x23 || after === 0x23; // "#"
}

// "phone", "bank_card", "id_card" or null (not a contact).
export function classifyRun(text, run, detectors, { identifiers }) {
  const digits = run.digits;
  const n = digits.length;
  if (run.international || (digits.startsWith('00') && n >= 10)) {
    const national = digits.startsWith('00') && !run.international ? digits.slice(2) : digits;
    const lengths = detectors.phone_lengths;
    for (const size of [1, 2, 3]) {
      const code = national.slice(0, size);
      const rest = national.slice(size);
      if (Object.hasOwn(lengths, code) && lengths[code].includes(rest.length)) return 'phone';
    }
    return n >= 8 && n <= 15 ? 'phone' : null;
  }
  if (identifiers && n === 17 && run.end < text.length && text[run.end] === 'x' && chinaIdValid(digits, 'x')) {
    return 'id_card';
  }
  if (identifiers && n === 18 && chinaIdValid(digits.slice(0, 17), digits[17])) return 'id_card';
  if (n >= 13 && n <= 19 && luhnValid(digits)) return 'bank_card';
  if (identifiers && n >= 16 && n <= 19) return 'bank_card'; // a customer's card with a typo is still theirs
  if (n === 10 && ['400', '800'].includes(digits.slice(0, 3))) return null; // company service lines
  if (n >= 9 && n <= 15 && detectors.national_lengths.includes(n)) return 'phone';
  if (n >= 7 && n <= 8 && contextBefore(text, run.start, detectors.contact_context)) return 'phone';
  return null;
}

// runs: digitRuns(text), if the caller has them already.
export function detectNumbers(text, detectors, enabled, { identifiers, runs = null }) {
  const found = [];
  for (const run of runs ?? digitRuns(text)) {
    let end = run.end;
    if (identifiers && run.digits.length === 17 && end < text.length && text[end] === 'x') {
      end += 1;
    } else if (attachedToLetters(text, run)) {
      continue;
    }
    if (referenceBefore(text, run.start, detectors.reference_context)) continue;
    const kind = classifyRun(text, run, detectors, { identifiers });
    if (kind && enabled.has(kind)) {
      const positions = end !== run.end ? [...run.positions, end - 1] : [...run.positions];
      found.push({ start: run.start, end, kind, maskPositions: positions });
    }
  }
  return found;
}

function range(start, end) {
  const out = [];
  for (let i = start; i < end; i++) out.push(i);
  return out;
}

// Every way of writing "@" that EMAIL accepts. An address holds one no more than 65 characters after it
// starts (a local part of at most 64, an optional space), so the pattern need not be tried further back.
const AT_FORM = /@|\(at\)|\[at\]|\{at\}|<at>| at |艾特|圈a/g;
const AT_FORM_LONGEST = 4;
const LOCAL_REACH = 65;

function allLatinLetters(text) {
  for (let i = 0; i < text.length; i++) if (!isLatinCode(text.charCodeAt(i))) return false;
  return true;
}

// Whether text[from, end) ends as EMAIL_LOCAL_BEFORE requires: "dot" and one closing character, then
// perhaps a space. Most addresses are not spelled out, and this spares them the look back.
function spelledDotBefore(text, from, end) {
  return (end - 4 >= from && text.startsWith('dot', end - 4)) || (end - 5 >= from && text.startsWith('dot', end - 5));
}

export function detectEmails(text) {
  const found = [];
  let from = 0;
  for (;;) {
    AT_FORM.lastIndex = from;
    if (!AT_FORM.test(text)) break;
    EMAIL.lastIndex = Math.max(from, AT_FORM.lastIndex - AT_FORM_LONGEST - LOCAL_REACH);
    const match = EMAIL.exec(text);
    if (match === null) break;
    const [whole, local, at, domain] = match;
    from = match.index + whole.length;
    const labels = domain.split(EMAIL_DOT_SPLIT);
    const top = labels[labels.length - 1];
    if (labels.length < 2 || top.length < 2 || !allLatinLetters(top)) continue;
    if (at.trim() === 'at' && [...domain.matchAll(EMAIL_DOT_ALL)].every((sep) => sep[0].trim() === '.')) {
      continue; // "look at example.com": a plain " at " needs a spelled-out " dot " as well
    }
    let localStart = match.index;
    // a bounded look back: a spelled-out local part is short, and long texts stay linear
    const window = Math.max(0, localStart - 200);
    if (spelledDotBefore(text, window, localStart)) {
      const before = EMAIL_LOCAL_BEFORE.exec(text.slice(window, localStart));
      if (before) localStart = window + before.index;
    }
    found.push({
      start: localStart, end: match.index + whole.length, kind: 'email',
      maskPositions: range(localStart, match.index + local.length),
    });
  }
  return found;
}

export function detectLinks(text) {
  return [...text.matchAll(LINK)].map((m) => ({
    start: m.index, end: m.index + m[0].length, kind: 'link', maskPositions: [],
  }));
}

export function detectWallets(text) {
  const found = [];
  for (const match of text.matchAll(WALLET)) {
    const token = match[0];
    if ('13'.includes(token[0]) && !([...token].some(isLatinLetter) && [...token.slice(1)].some(isDigit))) continue;
    found.push({ start: match.index, end: match.index + token.length, kind: 'crypto_wallet', maskPositions: [] });
  }
  return found;
}

function stickyMatch(pattern, text, position) {
  pattern.lastIndex = position;
  return pattern.exec(text);
}

const HANDLE_MARKS = [':', '@', '号', 'id'];
const TRAILING_DOT_OR_DASH = new Set([0x2e, 0x2d]);

// What detectHandles needs of a keyword list, worked out on its first use: which UTF-16 units start a
// keyword, and which keywords each one starts. (The engine never changes its lists once built.)
const handleIndexes = new WeakMap();

function handleIndex(detectors) {
  const keywords = detectors.handle_keywords;
  let index = handleIndexes.get(keywords);
  if (index === undefined || index.stopList !== detectors.stop_handles) {
    const group = new Uint16Array(0x10000); // first unit → 1 + its place in `groups` (0: starts no keyword)
    const groups = []; // the numbers of the keywords that start with one unit, in order
    const bounded = []; // whether those keywords need a word boundary (they start with a Latin letter or "+")
    keywords.forEach(([keyword], k) => {
      if (!keyword) return;
      const unit = keyword.charCodeAt(0);
      if (group[unit] === 0) {
        groups.push([]);
        bounded.push(isLatinCode(unit) || unit === 0x2b);
        group[unit] = groups.length;
      }
      groups[group[unit] - 1].push(k);
    });
    index = { group, groups, bounded, stop: new Set(detectors.stop_handles), stopList: detectors.stop_handles };
    handleIndexes.set(keywords, index);
  }
  return index;
}

function isLatinOrDigitCode(unit) {
  return isLatinCode(unit) || (unit >= 0x30 && unit <= 0x39);
}

// Python's order: keyword by keyword, each from the left, overlapping occurrences included. The text is
// read once for the units that start a keyword; the occurrences found are then put in that order.
export function detectHandles(text, detectors) {
  const found = [];
  const { group, groups, bounded, stop } = handleIndex(detectors);
  const keywords = detectors.handle_keywords;
  const n = text.length;
  const occurrences = []; // keyword number * (n + 1) + start
  for (let p = 0; p < n; p++) {
    const g = group[text.charCodeAt(p)] - 1;
    if (g < 0) continue;
    if (bounded[g] && p > 0) {
      const before = text.charCodeAt(p - 1);
      if (isLatinOrDigitCode(before) || before === 0x23) continue; // inside a word: no boundary
    }
    const candidates = groups[g];
    for (let c = 0; c < candidates.length; c++) {
      const k = candidates[c];
      if (text.startsWith(keywords[k][0], p)) occurrences.push(k * (n + 1) + p);
    }
  }
  if (occurrences.length > 1) occurrences.sort((a, b) => a - b);
  for (const occurrence of occurrences) {
    const start = occurrence % (n + 1);
    const [keyword, strong] = keywords[(occurrence - start) / (n + 1)];
    const end = start + keyword.length;
    const first = keyword.charCodeAt(0);
    const latin = isLatinCode(first) || first === 0x2b; // "+"
    const boundaryOk = !latin || (
      (start === 0 || !(isLatinOrDigitCode(text.charCodeAt(start - 1)) || text.charCodeAt(start - 1) === 0x23))
      && (end >= n || !isLatinOrDigitCode(text.charCodeAt(end)))
    );
    if (!boundaryOk) continue;
    const filler = stickyMatch(HANDLE_FILLER, text, end);
    const fillerEnd = filler.index + filler[0].length;
    const token = fillerEnd - end <= 10 ? stickyMatch(HANDLE_TOKEN, text, fillerEnd) : null;
    if (!token) continue;
    let length = token[0].length; // without the trailing "." and "-" (Python's rstrip(".-"))
    while (length > 0 && TRAILING_DOT_OR_DASH.has(token[0].charCodeAt(length - 1))) length--;
    const value = token[0].slice(0, length);
    const tokenEnd = token.index + length;
    const marked = HANDLE_MARKS.some((mark) => filler[0].includes(mark));
    let hasSign = false;
    for (let i = 0; i < length && !hasSign; i++) {
      const unit = value.charCodeAt(i);
      hasSign = (unit >= 0x30 && unit <= 0x39) || unit === 0x5f; // a digit or "_"
    }
    if (length >= 5 && !stop.has(value) && (tokenEnd >= n || !isLatinCode(text.charCodeAt(tokenEnd)))
      && (hasSign || strong || marked)) {
      found.push({ start, end: tokenEnd, kind: 'handle', maskPositions: range(token.index, tokenEnd) });
    }
  }
  return found;
}
