import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Tables, baseChars, foldWord, isWordChar, plainStream, skeleton } from '../../extension/engine/normalise.js';

const tables = new Tables({
  confusables: { а: 'a', о: 'o', '➕': '+' },
  t2s: { 臺: '台', 灣: '湾', 交: '交' },
  fold: { 0: 'o', 1: 'i', l: 'i', 3: 'e', 4: 'a', 5: 's', 7: 't' },
});

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

  it('leaves code points Python does not know unchanged', () => {
    // U+1CCF1 (OUTLINED DIGIT ONE, Unicode 16) would become "1" under a newer runtime's NFKC.
    assert.equal(baseChars('\u{1CCF1}', tables), '\u{1CCF1}');
    assert.equal(isWordChar('\u{31350}'), false); // CJK extension H, Unicode 15
  });
});

describe('isWordChar', () => {
  it('keeps letters and digits of any script', () => {
    for (const ch of ['a', '字', 'ß', '٣', '𠀀', 'é']) assert.equal(isWordChar(ch), true, ch);
    for (const ch of [' ', '-', '。', '😀', '\u0301', '_']) assert.equal(isWordChar(ch), false, ch);
  });
});

describe('plainStream', () => {
  it('maps each normalised character to its original code point', () => {
    const plain = plainStream('😀ﬁ\u200bＡ', tables);
    assert.deepEqual(plain.chars, ['😀', 'f', 'i', 'a']);
    assert.deepEqual(plain.origin, [0, 1, 1, 3]);
  });
});

describe('skeleton', () => {
  it('drops separators, folds digits and collapses repeated non-Latin characters', () => {
    const { stream, gapBefore } = skeleton('私私 下下, 1d1ot!', tables);
    assert.equal(stream.text, '私下idiot');
    assert.deepEqual(stream.origin, [0, 3, 7, 8, 9, 10, 11]);
    assert.deepEqual(gapBefore, [true, true, true, false, false, false, false]);
  });

  it('keeps doubled Latin letters and digits', () => {
    assert.equal(foldWord('guaranteed 2288', tables), 'guaranteed2288');
  });

  it('does not count zero-width characters as separators', () => {
    const { stream, gapBefore } = skeleton('p\u200ba\u200dy', tables);
    assert.equal(stream.text, 'pay');
    assert.deepEqual(gapBefore, [true, false, false]);
  });
});
