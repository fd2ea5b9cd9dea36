import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildAutomaton, findWords } from '../../extension/engine/matcher.js';
import { Skeleton } from '../../extension/engine/normalise.js';

// A skeleton that is the text itself, with a separator before each character unless `gaps` says otherwise.
function skeletonOf(text, gaps = null) {
  const points = Int32Array.from(Array.from(text), (ch) => ch.codePointAt(0));
  const gapBefore = Uint8Array.from(points, (_, i) => (gaps === null || gaps[i] ? 1 : 0));
  return new Skeleton(points, Int32Array.from(points, (_, i) => i), gapBefore);
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
    const text = 'ushers 私下😀x';
    assert.deepEqual(order(findWords(buildAutomaton(keys), skeletonOf(text))), order(naive(keys, text)));
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
      // A separator before every character: no Latin match sits inside a longer Latin word.
      assert.deepEqual(order(findWords(buildAutomaton(keys), skeletonOf(text))), order(naive(keys, text)));
    }
  });

  it('follows long failure chains (keys that are suffixes of keys)', () => {
    const keys = new Map(['a', 'aa', 'aaa', 'ab', 'aab', 'baa', 'b'].map((k) => [k, [['x', k]]]));
    const text = 'aaabaaabbaab';
    assert.deepEqual(order(findWords(buildAutomaton(keys), skeletonOf(text))), order(naive(keys, text)));
  });

  it('requires Latin matches to stand on word boundaries', () => {
    const keys = new Map([['payme', [['p', 'pay me']]]]);
    const gaps = (...at) => Array.from('repayme', (_, i) => at.includes(i));
    assert.deepEqual(findWords(buildAutomaton(keys), skeletonOf('repayme', gaps(0))), []);
    assert.equal(findWords(buildAutomaton(keys), skeletonOf('repayme', gaps(0, 2))).length, 1);
  });

  it('is null without keys', () => {
    assert.equal(buildAutomaton(new Map()), null);
  });
});
