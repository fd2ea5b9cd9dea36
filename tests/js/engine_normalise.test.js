import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CodePointCache, Tables, ZERO_WIDTH, baseChars, foldWord, isWordChar, plainStream, skeleton,
} from '../../extension/engine/normalise.js';
import { UnassignedCodePoints, decodeRanges } from '../../extension/engine/unassigned.js';

// The payload's encoding (backend/engine/rules.py encode_ranges): "gap+length" in hex, gaps from the end
// of the range before.
function encodeRanges(ranges) {
  let last = 0;
  return ranges.map(([start, end]) => {
    const pair = `${(start - last).toString(16)}+${(end - start).toString(16)}`;
    last = end;
    return pair;
  }).join(',');
}

const TABLES = {
  confusables: { а: 'a', о: 'o', '➕': '+' },
  t2s: { 臺: '台', 灣: '湾', 交: '交' },
  fold: { 0: 'o', 1: 'i', l: 'i', 3: 'e', 4: 'a', 5: 's', 7: 't' },
};
// Two code points Python 3.11's Unicode 14 does not know, and a newer runtime may.
const UNICODE = { version: '14.0.0', unassigned: encodeRanges([[0x1ccf1, 0x1ccf1], [0x31350, 0x31350]]) };
const tables = new Tables(TABLES, UNICODE);

describe('baseChars', () => {
  it('applies NFKC, lower case and the confusables', () => {
    assert.equal(baseChars('Ａ', tables), 'a');
    assert.equal(baseChars('１', tables), '1');
    assert.equal(baseChars('а', tables), 'a'); // Cyrillic
    assert.equal(baseChars('➕', tables), '+');
    assert.equal(baseChars('ﬁ', tables), 'fi');
  });

  it('strips diacritics from Latin, Greek and Cyrillic only', () => {
    assert.equal(baseChars('É', tables), 'e');
    assert.equal(baseChars('ά', tables), 'α');
    assert.equal(baseChars('が', tables), 'が'); // Japanese keeps its voicing mark
  });

  it('maps traditional to simplified and drops zero-width characters', () => {
    assert.equal(baseChars('臺', tables), '台');
    assert.equal(baseChars('\u200b', tables), '');
    assert.equal(baseChars('\ufeff', tables), '');
  });

  it('leaves code points the payload calls unassigned unchanged', () => {
    // U+1CCF1 (OUTLINED DIGIT ONE, Unicode 16) would become "1" under a newer runtime's NFKC.
    assert.equal(baseChars('\u{1CCF1}', tables), '\u{1CCF1}');
    assert.equal(isWordChar('\u{31350}', tables), false); // CJK extension H, Unicode 15
  });
});

describe('isWordChar', () => {
  it('keeps letters and digits of any script', () => {
    for (const ch of ['a', '字', 'ß', '٣', '𠀀', 'é']) assert.equal(isWordChar(ch, tables), true, ch);
    for (const ch of [' ', '-', '。', '😀', '\u0301', '_']) assert.equal(isWordChar(ch, tables), false, ch);
  });
});

describe('the unassigned table from the payload', () => {
  it('decodes gap+length ranges', () => {
    const ranges = [[0x378, 0x379], [0x380, 0x383], [0x1ccf1, 0x1ccf1], [0x10fffe, 0x10ffff]];
    const { starts, ends } = decodeRanges(encodeRanges(ranges));
    assert.deepEqual(Array.from(starts, (start, i) => [start, ends[i]]), ranges);
    const unassigned = new UnassignedCodePoints({ version: '14.0.0', unassigned: encodeRanges(ranges) });
    for (const cp of [0x378, 0x379, 0x381, 0x1ccf1, 0x10ffff]) assert.equal(unassigned.has(cp), true, cp.toString(16));
    for (const cp of [0x377, 0x37a, 0x384, 0x1ccf0, 0x1ccf2, 0x10fffd]) assert.equal(unassigned.has(cp), false);
  });

  it('can be empty, but not missing or malformed', () => {
    assert.equal(new UnassignedCodePoints({ version: '99.0.0', unassigned: '' }).has(0x378), false);
    assert.throws(() => new Tables(TABLES, undefined), /unicode\.unassigned/);
    assert.throws(() => new Tables(TABLES, { version: '14.0.0', unassigned: '378-1' }), /gap\+length/);
  });

  it('decides what a word character is: a letter it lists is a separator', () => {
    // 下 is a letter in every Unicode; a payload compiled by a Python that did not know it says so.
    const strange = new Tables(TABLES, { version: 'test', unassigned: encodeRanges([[0xe9, 0xe9], [0x4e0b, 0x4e0b]]) });
    assert.equal(isWordChar('下', tables), true);
    assert.equal(isWordChar('下', strange), false);
    assert.equal(foldWord('私下交易', tables), '私下交易');
    assert.equal(foldWord('私下交易', strange), '私交易');
    assert.deepEqual(Array.from(skeleton('私下交易', strange).gapBefore), [1, 1, 0]);
    // and what it lists is not normalised either: é keeps its accent
    assert.equal(baseChars('é', strange), 'é');
    assert.equal(plainStream('aéb', strange).text, 'aéb');
    assert.equal(plainStream('aéb', tables).text, 'aeb');
  });
});

describe('CodePointCache', () => {
  it('works each code point out once, above the BMP too, and stores a sequence once', () => {
    const asked = [];
    // odd code points stay themselves, even ones become 1 2 3, "A" vanishes
    const cache = new CodePointCache((cp) => {
      asked.push(cp);
      if (cp === 0x41) return [];
      return cp % 2 ? [cp] : [1, 2, 3];
    });
    assert.equal(cache.get(0x61), 0x61);
    assert.equal(cache.get(0x1f601), 0x1f601);
    assert.ok(cache.get(0x41) < 0);
    const sequence = cache.get(0x62);
    assert.ok(sequence < 0);
    assert.equal(cache.get(0x1f600), sequence);
    assert.deepEqual(Array.from(cache.sequences[0]), [1, 2, 3]);
    for (const cp of [0x61, 0x1f601, 0x41, 0x62, 0x1f600]) cache.get(cp);
    assert.deepEqual(asked, [0x61, 0x1f601, 0x41, 0x62, 0x1f600]);
    assert.equal(cache.sequences.length, 1);
  });
});

describe('plainStream', () => {
  it('maps each normalised character to its original code point', () => {
    const plain = plainStream('😀ﬁ\u200bＡ', tables);
    assert.deepEqual(plain.chars, ['😀', 'f', 'i', 'a']);
    assert.equal(plain.text, '😀fia');
    assert.deepEqual(Array.from(plain.origin), [0, 1, 1, 3]);
    assert.equal(plain.astral, true);
    assert.equal(plainStream('ﬁ x', tables).astral, false);
  });
});

describe('skeleton', () => {
  it('drops separators, folds digits and collapses repeated non-Latin characters', () => {
    const words = skeleton('私私 下下, 1d1ot!', tables);
    assert.equal(words.text, '私下idiot');
    assert.deepEqual(Array.from(words.origin), [0, 3, 7, 8, 9, 10, 11]);
    assert.deepEqual(Array.from(words.gapBefore), [1, 1, 1, 0, 0, 0, 0]);
  });

  it('keeps doubled Latin letters and digits', () => {
    assert.equal(foldWord('guaranteed 2288', tables), 'guaranteed2288');
  });

  it('does not count zero-width characters as separators', () => {
    const words = skeleton('p\u200ba\u200dy', tables);
    assert.equal(words.text, 'pay');
    assert.deepEqual(Array.from(words.gapBefore), [1, 0, 0]);
  });

  it('keeps the separator inside a character that becomes several ("½" is 1⁄2)', () => {
    const words = skeleton('a½', tables);
    assert.equal(words.text, 'ai2');
    assert.deepEqual(Array.from(words.gapBefore), [1, 0, 1]);
    assert.deepEqual(Array.from(words.origin), [0, 1, 1]);
  });
});

// The streams as the engine first computed them, one string per character: what the typed-array
// versions above must reproduce for any text.
function referenceStreams(text, t) {
  const plain = { chars: [], origin: [] };
  const skel = { chars: [], origin: [], gapBefore: [] };
  let gap = true;
  let index = 0;
  for (const ch of text) {
    const mapped = baseChars(ch, t);
    for (const c of mapped) {
      plain.chars.push(c);
      plain.origin.push(index);
    }
    if (!ZERO_WIDTH.has(ch)) {
      for (let c of mapped) {
        if (!isWordChar(c, t)) {
          gap = true;
          continue;
        }
        c = t.fold.get(c) ?? c;
        const last = skel.chars[skel.chars.length - 1];
        if (last === c && !(c >= 'a' && c <= 'z') && !(c >= '0' && c <= '9')) continue;
        skel.chars.push(c);
        skel.origin.push(index);
        skel.gapBefore.push(gap ? 1 : 0);
        gap = false;
      }
      if (!mapped) gap = true;
    }
    index += 1;
  }
  return { plain, skel };
}

describe('the streams against a one-string-per-character reference', () => {
  // Ligatures and U+FDFA (18 characters after NFKC) make the writers grow; astral characters, lone
  // surrogates and unassigned code points take the slow paths.
  const pieces = ['私', '下', '交易', 'pay me', ' ', '\u200b', 'ﬁ', '½', '😀', '𠀀', '\ud800', '\udc00', 'É', 'Ａ',
    '臺', '1', '38', 'idiot', '私私', 'ǅ', '\u{1CCF1}', '\u{31350}', '⑳', '㏒', 'ß', 'İ', 'Σ', '-', 'a', '\ufdfa',
    '\u0301', '\u{1D7CF}', '\u{1F1E6}'];
  let seed = 11;
  const random = () => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return seed / 2 ** 32;
  };

  it('agree when the streams are far longer than the text', () => {
    for (const text of ['\ufdfa'.repeat(40), `${'㉑'.repeat(30)}\ufdfa`, '\ufdfa😀'.repeat(9)]) {
      const expected = referenceStreams(text, tables);
      assert.deepEqual(plainStream(text, tables).chars, expected.plain.chars);
      assert.deepEqual(Array.from(skeleton(text, tables).origin), expected.skel.origin);
      assert.equal(skeleton(text, tables).text, expected.skel.chars.join(''));
    }
  });

  it('agree on random texts', () => {
    for (let round = 0; round < 2000; round++) {
      let text = '';
      const length = Math.floor(random() * (round % 10 === 0 ? 400 : 20));
      for (let i = 0; i < length; i++) text += pieces[Math.floor(random() * pieces.length)];
      const expected = referenceStreams(text, tables);
      const plain = plainStream(text, tables);
      assert.deepEqual(plain.chars, expected.plain.chars, JSON.stringify(text));
      assert.equal(plain.text, expected.plain.chars.join(''));
      assert.deepEqual(Array.from(plain.origin), expected.plain.origin);
      const words = skeleton(text, tables);
      assert.equal(words.text, expected.skel.chars.join(''), JSON.stringify(text));
      assert.deepEqual(Array.from(words.origin), expected.skel.origin);
      assert.deepEqual(Array.from(words.gapBefore), expected.skel.gapBefore);
    }
  });
});
