// Sensitive words: an Aho-Corasick automaton over the skeleton stream (see normalise.skeleton).
//
// The trie lives in typed arrays: transitions in one open-addressing hash keyed by (node, code point),
// so building 100k words takes a fraction of a second and a lookup is a couple of array reads.

import { isLatin } from './normalise.js';

const EMPTY = -1;

function codePoints(text) {
  const out = [];
  for (const ch of text) out.push(ch.codePointAt(0));
  return out;
}

function hashOf(node, cp, mask) {
  return (Math.imul(node, 0x9e3779b1) ^ Math.imul(cp + 1, 0x85ebca77)) & mask;
}

class Automaton {
  // keys: Map of key text → values (any array); reported with the key's length in code points.
  constructor(keys) {
    const keyPoints = [];
    let total = 1;
    for (const key of keys.keys()) {
      const points = codePoints(key);
      keyPoints.push(points);
      total += points.length;
    }
    let size = 16;
    while (size < total * 2) size *= 2;
    this.mask = size - 1;
    this.slotNode = new Int32Array(size).fill(EMPTY);
    this.slotPoint = new Int32Array(size);
    this.slotChild = new Int32Array(size);
    const firstChild = new Int32Array(total).fill(EMPTY);
    const nextSibling = new Int32Array(total).fill(EMPTY);
    this.terminal = new Int32Array(total).fill(EMPTY);
    this.lengths = [];
    this.values = [];
    let nodes = 1;
    let keyIndex = 0;
    for (const values of keys.values()) {
      const points = keyPoints[keyIndex++];
      if (!points.length) continue; // an empty key matches nothing (as in pyahocorasick)
      let node = 0;
      for (const cp of points) {
        let child = this.next(node, cp);
        if (child === EMPTY) {
          child = nodes++;
          this.insert(node, cp, child);
          nextSibling[child] = firstChild[node];
          firstChild[node] = child;
        }
        node = child;
      }
      if (this.terminal[node] === EMPTY) {
        this.terminal[node] = this.values.length;
        this.lengths.push(points.length);
        this.values.push(values);
      }
    }
    this.fail = new Int32Array(nodes);
    this.dictLink = new Int32Array(nodes).fill(EMPTY); // nearest proper suffix that ends a key
    const childPoint = new Int32Array(nodes);
    const queue = new Int32Array(nodes);
    let head = 0;
    let tail = 0;
    for (let child = firstChild[0]; child !== EMPTY; child = nextSibling[child]) queue[tail++] = child;
    for (let slot = 0; slot <= this.mask; slot++) {
      if (this.slotNode[slot] !== EMPTY) childPoint[this.slotChild[slot]] = this.slotPoint[slot];
    }
    while (head < tail) {
      const node = queue[head++];
      const failed = this.fail[node];
      this.dictLink[node] = this.terminal[failed] !== EMPTY ? failed : this.dictLink[failed];
      for (let child = firstChild[node]; child !== EMPTY; child = nextSibling[child]) {
        const cp = childPoint[child];
        let state = failed;
        let target = this.next(state, cp);
        while (target === EMPTY && state !== 0) {
          state = this.fail[state];
          target = this.next(state, cp);
        }
        this.fail[child] = target === EMPTY || target === child ? 0 : target;
        queue[tail++] = child;
      }
    }
    this.dictLink[0] = EMPTY;
  }

  insert(node, cp, child) {
    let slot = hashOf(node, cp, this.mask);
    while (this.slotNode[slot] !== EMPTY) slot = (slot + 1) & this.mask;
    this.slotNode[slot] = node;
    this.slotPoint[slot] = cp;
    this.slotChild[slot] = child;
  }

  next(node, cp) {
    let slot = hashOf(node, cp, this.mask);
    for (;;) {
      const owner = this.slotNode[slot];
      if (owner === EMPTY) return EMPTY;
      if (owner === node && this.slotPoint[slot] === cp) return this.slotChild[slot];
      slot = (slot + 1) & this.mask;
    }
  }

  // Calls report(last, length, values) for every key occurrence; `last` is the index of its last code point.
  scan(points, report) {
    let state = 0;
    for (let index = 0; index < points.length; index++) {
      const cp = points[index];
      let target = this.next(state, cp);
      while (target === EMPTY && state !== 0) {
        state = this.fail[state];
        target = this.next(state, cp);
      }
      state = target === EMPTY ? 0 : target;
      for (let node = this.terminal[state] !== EMPTY ? state : this.dictLink[state]; node !== EMPTY;
        node = this.dictLink[node]) {
        const key = this.terminal[node];
        report(index, this.lengths[key], this.values[key]);
      }
    }
  }
}

// keys: Map of skeleton → [[category, word], ...]; null when there is nothing to match.
export function buildAutomaton(keys) {
  if (!keys.size) return null;
  return new Automaton(keys);
}

// A match that begins or ends with a Latin letter must not sit inside a longer Latin word.
// A boundary is a non-Latin neighbour, the end of the text, or a separator in the original text.
export function bounded(stream, gapBefore, start, end) {
  const chars = stream.chars;
  if (isLatin(chars[start]) && start > 0 && isLatin(chars[start - 1]) && !gapBefore[start]) return false;
  if (isLatin(chars[end - 1]) && end < chars.length && isLatin(chars[end]) && !gapBefore[end]) return false;
  return true;
}

export function findWords(automaton, stream, gapBefore) {
  if (automaton === null || !stream.chars.length) return [];
  const hits = [];
  automaton.scan(codePoints(stream.text), (last, length, values) => {
    const start = last - length + 1;
    const end = last + 1;
    if (bounded(stream, gapBefore, start, end)) {
      for (const [category, word] of values) hits.push({ start, end, category, word });
    }
  });
  return hits;
}
