import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildAutomaton, findWords } from '../../extension/engine/matcher.js';
import { Stream } from '../../extension/engine/normalise.js';

function streamOf(text) {
  const chars = Array.from(text);
  return { stream: new Stream(chars, chars.map((_, i) => i)), gapBefore: chars.map(() => true) };
}

function naive(keys, text) {
  const chars = Array.from(text);
  const hits = [];
  for (const [key, values] of keys) {
    const k = Array.from(key);
    for (let start = 0; start + k.length <= chars.length; start++) {
      if (k.every((c, j) => chars[start + j] === c)) {
        for (const [category, word] of values) hits.push({ start, end: start + k.length, category, word });
      }
    }
  }
  return hits;
}

const order = (hits) => hits.map((h) => `${h.start}:${h.end}:${h.word}`).sort();

describe('Aho-Corasick', () => {
  it('finds every occurrence of every key, overlapping ones too', () => {
    const keys = new Map([['he', [['c', 'he']]], ['she', [['c', 'she']]], ['hers', [['c', 'hers']]], ['私下', [['d', '私下']]],
      ['😀x', [['e', '😀x'], ['f', '😀x!']]]]);
    const { stream, gapBefore } = streamOf('ushers 私下😀x');
    assert.deepEqual(order(findWords(buildAutomaton(keys), stream, gapBefore)), order(naive(keys, 'ushers 私下😀x')));
  });

  it('agrees with a naive search on random keys and texts', () => {
    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    const alphabet = ['a', 'b', 'c', '私', '下', '𠀀'];
    const word = (n) => Array.from({ length: n }, () => alphabet[Math.floor(random() * alphabet.length)]).join('');
    for (let round = 0; round < 50; round++) {
      const keys = new Map();
      for (let i = 0; i < 20; i++) keys.set(word(1 + Math.floor(random() * 4)), [['x', `w${i}`]]);
      const text = word(60);
      // Without gaps every Latin match inside a longer Latin run is dropped; compare on non-Latin alphabets only.
      const chars = Array.from(text);
      const stream = new Stream(chars, chars.map((_, i) => i));
      const gapBefore = chars.map(() => true);
      assert.deepEqual(order(findWords(buildAutomaton(keys), stream, gapBefore)), order(naive(keys, text)));
    }
  });

  it('requires Latin matches to stand on word boundaries', () => {
    const keys = new Map([['payme', [['p', 'pay me']]]]);
    const chars = Array.from('repayme');
    const stream = new Stream(chars, chars.map((_, i) => i));
    assert.deepEqual(findWords(buildAutomaton(keys), stream, chars.map((_, i) => i === 0)), []);
    const gaps = chars.map((_, i) => i === 0 || i === 2);
    assert.equal(findWords(buildAutomaton(keys), stream, gaps).length, 1);
  });

  it('is null without keys', () => {
    assert.equal(buildAutomaton(new Map()), null);
  });
});
