// `cli.mjs check|mask`: JSON Lines in, one answer line per input line, in order; what
// backend/engine/jsonl.py does, byte for byte.
//
// The answer echoes the input's "id", and a malformed line is answered with Python's own error text, so
// this module reads JSON as Python's json module does (its error messages and positions, integers of any
// size, floats, key order) and writes it as json.dumps(..., ensure_ascii=False) does.

export const MAX_LINE_BYTES = 1024 * 1024; // a chat message is never this long; a longer line is refused
// A row is two levels deep. Deeper lines are refused before parsing, by the same count in both engines
// (jsonl.py): Python's parser would otherwise give up at a depth that depends on its stack.
export const MAX_DEPTH = 100;
// "at": when the message was sent, in seconds since 1970, for the split-number window; bounded so that
// both engines do the same exact arithmetic on it.
export const MAX_AT = 1e11;
const AT_ERROR = '"at" must be a time in seconds since 1970 (a number from 0 to 1e11)';
const JSON_STRING = /"(?:[^"\\]|\\[\s\S])*"/g;

// The deepest bracket nesting outside JSON strings (a rough count: it also runs on malformed text).
export function nestingDepth(text) {
  const rest = text.replace(JSON_STRING, '');
  let depth = 0;
  let deepest = 0;
  for (let i = 0; i < rest.length; i++) {
    const c = rest[i];
    if (c === '[' || c === '{') deepest = Math.max(deepest, ++depth);
    else if (c === ']' || c === '}') depth -= 1;
  }
  return deepest;
}

// ---- Python values --------------------------------------------------------------------------------
// null, true, false and strings are themselves; lists are arrays; these wrap the rest.

export class PyInt {
  constructor(digits) {
    this.digits = digits; // canonical decimal, as str(int) writes it
  }
}

export class PyFloat {
  constructor(value) {
    this.value = value;
  }
}

export class PyDict {
  constructor(entries = []) {
    this.map = new Map(entries); // a repeated key keeps its first place and takes its last value, as in dict
  }

  get(key, fallback = null) {
    return this.map.has(key) ? this.map.get(key) : fallback;
  }
}

// ---- json.dumps -----------------------------------------------------------------------------------

// repr(float): the shortest digits that round-trip, in exponent form outside 1e-4 <= |x| < 1e16.
export function floatRepr(x) {
  if (Number.isNaN(x)) return 'NaN';
  if (x === Infinity) return 'Infinity';
  if (x === -Infinity) return '-Infinity';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const sign = x < 0 ? '-' : '';
  const [mantissa, exponent] = Math.abs(x).toExponential().split('e');
  const digits = mantissa.replace('.', '');
  const decpt = Number(exponent) + 1;
  if (decpt <= -4 || decpt > 16) {
    const power = decpt - 1;
    const padded = String(Math.abs(power)).padStart(2, '0');
    return `${sign}${digits[0]}${digits.length > 1 ? `.${digits.slice(1)}` : ''}e${power < 0 ? '-' : '+'}${padded}`;
  }
  if (decpt <= 0) return `${sign}0.${'0'.repeat(-decpt)}${digits}`;
  if (decpt >= digits.length) return `${sign}${digits}${'0'.repeat(decpt - digits.length)}.0`;
  return `${sign}${digits.slice(0, decpt)}.${digits.slice(decpt)}`;
}

// json.dumps(value, ensure_ascii=False): ", " and ": " between items, keys in the order given.
export function pythonJson(value) {
  if (value === null || value === undefined) return 'null';
  if (value === true) return 'true';
  if (value === false) return 'false';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') return Number.isInteger(value) ? String(value) : floatRepr(value);
  if (value instanceof PyInt) return value.digits;
  if (value instanceof PyFloat) return floatRepr(value.value);
  if (Array.isArray(value)) return `[${value.map(pythonJson).join(', ')}]`;
  const entries = value instanceof PyDict ? [...value.map] : Object.entries(value);
  return `{${entries.map(([key, item]) => `${JSON.stringify(key)}: ${pythonJson(item)}`).join(', ')}}`;
}

// ---- json.loads -----------------------------------------------------------------------------------

class DecodeError extends Error {
  constructor(msg, position) {
    super(msg);
    this.msg = msg;
    this.position = position; // UTF-16 index into the document
  }
}

class NoValue extends Error {
  constructor(position) {
    super('no value');
    this.position = position;
  }
}

function isJsonSpace(ch) {
  return ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r';
}

const ESCAPES = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

function hexValue(text) {
  return /^[0-9a-fA-F]{4}$/.test(text) ? parseInt(text, 16) : -1;
}

// Follows CPython 3.11's _json.c scanner: the same checks in the same order, so the same first error.
class Scanner {
  constructor(text) {
    this.s = text;
    this.length = text.length;
  }

  skipSpace(index) {
    while (index < this.length && isJsonSpace(this.s[index])) index += 1;
    return index;
  }

  string(end) {
    const s = this.s;
    const begin = end - 1;
    let out = '';
    for (;;) {
      let next = end;
      let c = '';
      for (; next < this.length; next++) {
        c = s[next];
        if (c === '"' || c === '\\') break;
        if (c.charCodeAt(0) <= 0x1f) throw new DecodeError('Invalid control character at', next);
      }
      if (next >= this.length) throw new DecodeError('Unterminated string starting at', begin);
      out += s.slice(end, next);
      next += 1;
      if (c === '"') return [out, next];
      if (next === this.length) throw new DecodeError('Unterminated string starting at', begin);
      c = s[next];
      if (c !== 'u') {
        end = next + 1;
        if (!Object.hasOwn(ESCAPES, c)) throw new DecodeError('Invalid \\escape', end - 2);
        out += ESCAPES[c];
        continue;
      }
      next += 1;
      end = next + 4;
      if (end >= this.length) throw new DecodeError('Invalid \\uXXXX escape', next - 1);
      let code = hexValue(s.slice(next, end));
      if (code < 0) throw new DecodeError('Invalid \\uXXXX escape', end - 5);
      if (code >= 0xd800 && code <= 0xdbff && end + 6 < this.length && s[end] === '\\' && s[end + 1] === 'u') {
        const low = hexValue(s.slice(end + 2, end + 6));
        if (low < 0) throw new DecodeError('Invalid \\uXXXX escape', end + 1);
        if (low >= 0xdc00 && low <= 0xdfff) {
          code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
          end += 6;
        }
      }
      out += String.fromCodePoint(code);
    }
  }

  object(index) {
    const entries = [];
    index = this.skipSpace(index);
    if (index >= this.length || this.s[index] !== '}') {
      for (;;) {
        if (index >= this.length || this.s[index] !== '"') {
          throw new DecodeError('Expecting property name enclosed in double quotes', index);
        }
        const [key, afterKey] = this.string(index + 1);
        index = this.skipSpace(afterKey);
        if (index >= this.length || this.s[index] !== ':') throw new DecodeError("Expecting ':' delimiter", index);
        index = this.skipSpace(index + 1);
        const [value, afterValue] = this.value(index);
        entries.push([key, value]);
        index = this.skipSpace(afterValue);
        if (index < this.length && this.s[index] === '}') break;
        if (index >= this.length || this.s[index] !== ',') throw new DecodeError("Expecting ',' delimiter", index);
        index = this.skipSpace(index + 1);
      }
    }
    return [new PyDict(entries), index + 1];
  }

  array(index) {
    const items = [];
    index = this.skipSpace(index);
    if (index >= this.length || this.s[index] !== ']') {
      for (;;) {
        const [value, afterValue] = this.value(index);
        items.push(value);
        index = this.skipSpace(afterValue);
        if (index < this.length && this.s[index] === ']') break;
        if (index >= this.length || this.s[index] !== ',') throw new DecodeError("Expecting ',' delimiter", index);
        index = this.skipSpace(index + 1);
      }
    }
    return [items, index + 1];
  }

  number(start) {
    const s = this.s;
    const last = this.length - 1;
    let index = start;
    const digit = (i) => s[i] >= '0' && s[i] <= '9';
    if (s[index] === '-') {
      index += 1;
      if (index > last) throw new NoValue(start);
    }
    if (s[index] >= '1' && s[index] <= '9') {
      index += 1;
      while (index <= last && digit(index)) index += 1;
    } else if (s[index] === '0') {
      index += 1;
    } else {
      throw new NoValue(start);
    }
    let isFloat = false;
    if (index < last && s[index] === '.' && digit(index + 1)) {
      isFloat = true;
      index += 2;
      while (index <= last && digit(index)) index += 1;
    }
    if (index < last && (s[index] === 'e' || s[index] === 'E')) {
      const eStart = index;
      index += 1;
      if (index < last && (s[index] === '-' || s[index] === '+')) index += 1;
      while (index <= last && digit(index)) index += 1;
      if (digit(index - 1)) isFloat = true;
      else index = eStart;
    }
    const text = s.slice(start, index);
    const value = isFloat ? new PyFloat(Number(text)) : new PyInt(BigInt(text).toString());
    return [value, index];
  }

  value(index) {
    if (index >= this.length) throw new NoValue(index);
    const s = this.s;
    switch (s[index]) {
      case '"': return this.string(index + 1);
      case '{': return this.object(index + 1);
      case '[': return this.array(index + 1);
      case 'n': if (s.startsWith('null', index)) return [null, index + 4]; break;
      case 't': if (s.startsWith('true', index)) return [true, index + 4]; break;
      case 'f': if (s.startsWith('false', index)) return [false, index + 5]; break;
      case 'N': if (s.startsWith('NaN', index)) return [new PyFloat(NaN), index + 3]; break;
      case 'I': if (s.startsWith('Infinity', index)) return [new PyFloat(Infinity), index + 8]; break;
      case '-': if (s.startsWith('-Infinity', index)) return [new PyFloat(-Infinity), index + 9]; break;
      default: break;
    }
    return this.number(index);
  }
}

function columnOf(text, position) {
  const lineStart = text.lastIndexOf('\n', position - 1) + 1;
  let column = 1;
  for (let i = lineStart; i < position; i++) {
    const unit = text.charCodeAt(i);
    if (!(unit >= 0xdc00 && unit <= 0xdfff && i > lineStart && isHighSurrogate(text.charCodeAt(i - 1)))) column += 1;
  }
  return column;
}

function isHighSurrogate(unit) {
  return unit >= 0xd800 && unit <= 0xdbff;
}

// json.loads(text); throws {msg, column} as JSONDecodeError would report them.
export function pythonJsonLoads(text) {
  const fail = (msg, position) => {
    const error = new Error(msg);
    error.msg = msg;
    error.column = columnOf(text, position);
    return error;
  };
  if (text.startsWith('\ufeff')) throw fail('Unexpected UTF-8 BOM (decode using utf-8-sig)', 0);
  const scanner = new Scanner(text);
  let value;
  let end;
  try {
    [value, end] = scanner.value(scanner.skipSpace(0));
  } catch (error) {
    if (error instanceof NoValue) throw fail('Expecting value', error.position);
    if (error instanceof DecodeError) throw fail(error.msg, error.position);
    throw error;
  }
  end = scanner.skipSpace(end);
  if (end !== text.length) throw fail('Extra data', end);
  return value;
}

// ---- lines ----------------------------------------------------------------------------------------

// The index of the first byte where UTF-8 decoding fails (Python's UnicodeDecodeError.start), or -1.
export function firstInvalidUtf8(bytes) {
  const n = bytes.length;
  let i = 0;
  while (i < n) {
    const b = bytes[i];
    if (b < 0x80) {
      i += 1;
      continue;
    }
    let need;
    let low = 0x80;
    let high = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      if (b === 0xe0) low = 0xa0;
      if (b === 0xed) high = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      if (b === 0xf0) low = 0x90;
      if (b === 0xf4) high = 0x8f;
    } else return i;
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k];
      if (i + k >= n || c < (k === 1 ? low : 0x80) || c > (k === 1 ? high : 0xbf)) return i;
    }
    i += need + 1;
  }
  return -1;
}

const UTF8 = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

function isBytesSpace(b) {
  return b === 0x20 || (b >= 0x09 && b <= 0x0d);
}

// Lines of a byte buffer as Python's read_lines yields them: each read cut at MAX_LINE_BYTES + 1 (the
// rest of a longer line skipped), "\r" and "\n" taken off the end, blank lines left out.
export function* readLines(buffer) {
  let position = 0;
  const readline = (limit) => {
    const stop = Math.min(buffer.length, position + limit);
    const newline = buffer.indexOf(0x0a, position);
    const end = newline !== -1 && newline < stop ? newline + 1 : stop;
    const line = buffer.subarray(position, end);
    position = end;
    return line;
  };
  for (;;) {
    const raw = readline(MAX_LINE_BYTES + 1);
    if (!raw.length) return;
    if (raw.length > MAX_LINE_BYTES && raw[raw.length - 1] !== 0x0a) {
      for (;;) {
        const rest = readline(MAX_LINE_BYTES);
        if (!rest.length || rest[rest.length - 1] === 0x0a) break;
      }
    }
    let end = raw.length;
    while (end > 0 && (raw[end - 1] === 0x0a || raw[end - 1] === 0x0d)) end -= 1;
    const stripped = raw.subarray(0, end);
    if (stripped.some((b) => !isBytesSpace(b))) yield stripped;
  }
}

// [row, null] or [null, error text], as jsonl.parse_line.
export function parseLine(raw) {
  if (raw.length > MAX_LINE_BYTES) return [null, `line longer than ${MAX_LINE_BYTES} bytes`];
  const invalid = firstInvalidUtf8(raw);
  if (invalid !== -1) return [null, `not UTF-8 (byte ${invalid})`];
  const text = UTF8.decode(raw);
  if (nestingDepth(text) > MAX_DEPTH) return [null, `not JSON: nested more than ${MAX_DEPTH} levels deep`];
  let row;
  try {
    row = pythonJsonLoads(text);
  } catch (error) {
    if (error.column === undefined) throw error;
    return [null, `not JSON: ${error.msg} at column ${error.column}`];
  }
  if (!(row instanceof PyDict)) return [null, 'each line must be a JSON object'];
  if (typeof row.get('text') !== 'string') return [null, '"text" must be a string'];
  if (!row.get('text').isWellFormed()) {
    return [null, '"text" holds a lone surrogate (\\ud800-\\udfff), which is not Unicode text'];
  }
  const direction = row.get('direction', 'out');
  if (direction !== 'in' && direction !== 'out') return [null, '"direction" must be "in" or "out"'];
  const conversation = row.get('conversation');
  if (conversation !== null && !(typeof conversation === 'string' || typeof conversation === 'boolean'
    || conversation instanceof PyInt)) {
    return [null, '"conversation" must be a string or a number'];
  }
  const at = atSeconds(row.get('at'));
  if (Number.isNaN(at)) return [null, AT_ERROR];
  return [row, null];
}

// The row's "at" as a number, null when absent, NaN when it is not a time jsonl.py accepts.
function atSeconds(value) {
  if (value === null) return null;
  let seconds = NaN;
  if (value instanceof PyInt) seconds = Number(value.digits);
  else if (value instanceof PyFloat) seconds = value.value;
  return seconds >= 0 && seconds <= MAX_AT ? seconds : NaN;
}

// str(conversation) in Python: booleans are integers there and print as True and False.
function conversationKey(value) {
  if (value === null) return null;
  if (value === true) return 'True';
  if (value === false) return 'False';
  return value instanceof PyInt ? value.digits : value;
}

// [answer, ok] per input line; the answer is ready for pythonJson.
export function* run(engine, lines, mode) {
  for (const raw of lines) {
    const [row, error] = parseLine(raw);
    if (error) {
      yield [{ error }, false];
      continue;
    }
    const text = row.get('text');
    if (mode === 'check') {
      const result = engine.check(text, {
        direction: row.get('direction', 'out'),
        conversation: conversationKey(row.get('conversation')),
        at: atSeconds(row.get('at')),
      });
      yield [{ id: row.get('id'), action: result.action, findings: result.findings }, true];
    } else {
      const masked = engine.mask(text);
      yield [{ id: row.get('id'), text: masked.text, spans: masked.spans }, true];
    }
  }
}
