// Contact and identifier detectors over the plain stream (normalised, separators kept).
//
// Each detector returns detections in plain-stream indices; the checker maps them to the original text.
// The regular expressions are those of backend/engine/detectors.py, character for character.
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

const CN_DIGIT_CLASS = [...CN_DIGITS.keys()].join('');
// A digit, a Chinese numeral, an English number word, or "o"/"l"/"i" right after one of those: the only
// places a digit can stand. digitRuns decides which of them join into a run.
const DIGIT_TOKEN = new RegExp(
  `[0-9${CN_DIGIT_CLASS}]`
  + '|(?<![a-z])(?:zero|one|two|three|four|five|six|seven|eight|nine)(?![a-z])'
  + `|(?<=[0-9${CN_DIGIT_CLASS}oli])[oli]`,
  'g',
);
const NUMBER_WORD_DIGITS = new Map(NUMBER_WORDS);

// [start, end, digit, isLetter] for every character or word that stands for a digit.
// Between start and end as Python's finditer(text, start, end) reads: lookbehinds see the text before
// start, lookaheads see nothing after end.
export function digitTokens(text, start = 0, end = text.length) {
  const tokens = [];
  const within = end === text.length ? text : text.slice(0, end);
  DIGIT_TOKEN.lastIndex = start;
  for (let match = DIGIT_TOKEN.exec(within); match !== null; match = DIGIT_TOKEN.exec(within)) {
    const token = match[0];
    const from = match.index;
    const to = from + token.length;
    if (token.length > 1) tokens.push([from, to, NUMBER_WORD_DIGITS.get(token), false]);
    else if (LETTER_DIGITS.has(token)) tokens.push([from, to, LETTER_DIGITS.get(token), true]);
    else tokens.push([from, to, CN_DIGITS.get(token) ?? token, false]);
  }
  return tokens;
}

const SEPARATOR_CLASS = [...RUN_SEPARATORS].map((c) => ('\\]^-['.includes(c) ? `\\${c}` : c)).join('');
const DIGIT = `(?:[0-9${CN_DIGIT_CLASS}]|(?<![a-z])(?:zero|one|two|three|four|five|six|seven|eight|nine)(?![a-z]))`;
const LETTER = '(?:[oli](?![a-hj-km-np-z]))';
// A run: a digit, then digits (or o/l/i right after one), each separated by at most MAX_GAP separators.
const DIGIT_RUN = new RegExp(`${DIGIT}${LETTER}*(?:[${SEPARATOR_CLASS}]{0,${MAX_GAP}}${DIGIT}${LETTER}*)*`, 'g');
const BLOCKED = '\x02';

// Digits (in any disguise) separated only by short runs of separators.
export function digitRuns(text) {
  const masked = text.replace(NOT_CONTACT_OR_MASKED, (span) => BLOCKED.repeat(span.length));
  const runs = [];
  for (const match of masked.matchAll(DIGIT_RUN)) {
    const end = match.index + match[0].length;
    const tokens = digitTokens(masked, match.index, end);
    const letters = tokens.filter((t) => t[3]).length;
    if (tokens.length - letters < letters) continue; // mostly letters: a word, not a number
    let start = match.index;
    const international = text.slice(Math.max(0, start - 3), start).replaceAll(' ', '').endsWith('+');
    if (international) start = text.lastIndexOf('+', start - 1);
    runs.push({
      digits: tokens.map((t) => t[2]).join(''), positions: tokens.map((t) => t[0]), start, end, international,
    });
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

export function contextBefore(text, start, words, reach = 12) {
  const window = text.slice(Math.max(0, start - reach), start);
  return words.some((word) => window.includes(word));
}

// An order, tracking or room number: the keyword stands right before, give or take ":", "号", "#".
export function referenceBefore(text, start, words) {
  let end = start;
  const from = Math.max(0, start - 10);
  while (end > from && REFERENCE_TRAILER.includes(text[end - 1])) end -= 1;
  const window = text.slice(from, end);
  return words.some((word) => window.endsWith(word));
}

// Part of a code such as SF1234567890, SKU42177 or 512GB (letters touch the digits).
function attachedToLetters(text, run) {
  const before = run.start > 0 ? text[run.start - 1] : '';
  const after = run.end < text.length ? text[run.end] : '';
  return isLatinLetter(before) || isLatinLetter(after) || before === '#' || after === '#';
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

export function detectNumbers(text, detectors, enabled, { identifiers }) {
  const found = [];
  for (const run of digitRuns(text)) {
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

export function detectEmails(text) {
  const found = [];
  for (const match of text.matchAll(EMAIL)) {
    const [whole, local, at, domain] = match;
    const labels = domain.split(EMAIL_DOT_SPLIT);
    const top = labels[labels.length - 1];
    if (labels.length < 2 || top.length < 2 || ![...top].every(isLatinLetter)) continue;
    if (at.trim() === 'at' && [...domain.matchAll(EMAIL_DOT_ALL)].every((sep) => sep[0].trim() === '.')) {
      continue; // "look at example.com": a plain " at " needs a spelled-out " dot " as well
    }
    let localStart = match.index;
    // a bounded look back: a spelled-out local part is short, and long texts stay linear
    const window = Math.max(0, localStart - 200);
    const before = EMAIL_LOCAL_BEFORE.exec(text.slice(window, localStart));
    if (before) localStart = window + before.index;
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

export function detectHandles(text, detectors) {
  const found = [];
  const stop = new Set(detectors.stop_handles);
  for (const [keyword, strong] of detectors.handle_keywords) {
    let start = text.indexOf(keyword);
    while (start !== -1) {
      const end = start + keyword.length;
      const latin = isLatinLetter(keyword[0]) || keyword[0] === '+';
      const boundaryOk = !latin || (
        (start === 0 || !(isLatinLetter(text[start - 1]) || isDigit(text[start - 1]) || text[start - 1] === '#'))
        && (end >= text.length || !(isLatinLetter(text[end]) || isDigit(text[end])))
      );
      if (boundaryOk) {
        const filler = stickyMatch(HANDLE_FILLER, text, end);
        const fillerEnd = filler.index + filler[0].length;
        const token = fillerEnd - end <= 10 ? stickyMatch(HANDLE_TOKEN, text, fillerEnd) : null;
        if (token) {
          const value = token[0].replace(/[.-]+$/, '');
          const tokenEnd = token.index + value.length;
          const marked = [':', '@', '号', 'id'].some((mark) => filler[0].includes(mark));
          const hasSign = [...value].some((c) => isDigit(c) || c === '_');
          if (value.length >= 5 && !stop.has(value) && (tokenEnd >= text.length || !isLatinLetter(text[tokenEnd]))
            && (hasSign || strong || marked)) {
            found.push({ start, end: tokenEnd, kind: 'handle', maskPositions: range(token.index, tokenEnd) });
          }
        }
      }
      start = start + 1 > text.length ? -1 : text.indexOf(keyword, start + 1);
    }
  }
  return found;
}
