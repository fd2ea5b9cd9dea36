// Sensitive words: an Aho-Corasick automaton over the skeleton stream (see normalise.skeleton).
//
// The trie lives in typed arrays, so building 100k words takes a fraction of a second: transitions in one
// open-addressing hash keyed by (node, code point), a slot's three fields side by side so that a lookup
// touches one cache line. At 100k words that table is far bigger than the CPU's caches, so two shortcuts
// keep the scan away from it: the root has a direct table over the BMP, and each node a 32-bit summary of
// its children's code points that rules most missing transitions out.

import { isLatinCode } from './normalise.js';

const EMPTY = -1;
const SLOT = 3; // slot fields: owner node, code point, child
const ROOT_TABLE = 0x10000;

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
    this.slots = new Int32Array(size * SLOT).fill(EMPTY);
    const firstChild = new Int32Array(total).fill(EMPTY);
    const nextSibling = new Int32Array(total).fill(EMPTY);
    const childPoint = new Int32Array(total);
    this.childBits = new Int32Array(total); // per node: bit (cp & 31) set for each child's code point cp
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
          childPoint[child] = cp;
          this.childBits[node] |= 1 << (cp & 31);
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
    this.rootNext = new Int32Array(ROOT_TABLE); // 0: no key starts with it, the scan stays at the root
    for (let child = firstChild[0]; child !== EMPTY; child = nextSibling[child]) {
      if (childPoint[child] < ROOT_TABLE) this.rootNext[childPoint[child]] = child;
    }
    this.linkFailures(nodes, firstChild, nextSibling, childPoint);
  }

  // Breadth first: each node's failure link (longest proper suffix in the trie) and its output, the
  // nearest node on that chain, itself included, that ends a key.
  linkFailures(nodes, firstChild, nextSibling, childPoint) {
    this.fail = new Int32Array(nodes);
    this.output = new Int32Array(nodes).fill(EMPTY);
    const queue = new Int32Array(nodes);
    let head = 0;
    let tail = 0;
    for (let child = firstChild[0]; child !== EMPTY; child = nextSibling[child]) queue[tail++] = child;
    while (head < tail) {
      const node = queue[head++];
      this.output[node] = this.terminal[node] !== EMPTY ? node : this.output[this.fail[node]];
      for (let child = firstChild[node]; child !== EMPTY; child = nextSibling[child]) {
        this.fail[child] = this.step(this.fail[node], childPoint[child]);
        queue[tail++] = child;
      }
    }
  }

  insert(node, cp, child) {
    let slot = hashOf(node, cp, this.mask);
    while (this.slots[slot * SLOT] !== EMPTY) slot = (slot + 1) & this.mask;
    this.slots[slot * SLOT] = node;
    this.slots[slot * SLOT + 1] = cp;
    this.slots[slot * SLOT + 2] = child;
  }

  next(node, cp) {
    const slots = this.slots;
    let slot = hashOf(node, cp, this.mask);
    for (;;) {
      const at = slot * SLOT;
      const owner = slots[at];
      if (owner === EMPTY) return EMPTY;
      if (owner === node && slots[at + 1] === cp) return slots[at + 2];
      slot = (slot + 1) & this.mask;
    }
  }

  // The state after reading cp in `state`: its child, else the failure chain's, else the root.
  step(state, cp) {
    const bit = 1 << (cp & 31);
    while (state !== 0) {
      if (this.childBits[state] & bit) {
        const target = this.next(state, cp);
        if (target !== EMPTY) return target;
      }
      state = this.fail[state];
    }
    if (cp < ROOT_TABLE) return this.rootNext[cp];
    const target = this.next(0, cp);
    return target === EMPTY ? 0 : target;
  }

  // Calls report(last, length, values) for every key occurrence; `last` is the index of its last code point.
  scan(points, report) {
    const output = this.output;
    let state = 0;
    for (let index = 0; index < points.length; index++) {
      state = this.step(state, points[index]);
      for (let node = output[state]; node !== EMPTY; node = output[this.fail[node]]) {
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
export function bounded(skeleton, start, end) {
  const { points, gapBefore } = skeleton;
  if (isLatinCode(points[start]) && start > 0 && isLatinCode(points[start - 1]) && !gapBefore[start]) return false;
  if (isLatinCode(points[end - 1]) && end < points.length && isLatinCode(points[end]) && !gapBefore[end]) {
    return false;
  }
  return true;
}

// Word hits in skeleton indices: {start, end, category, word}.
export function findWords(automaton, skeleton) {
  if (automaton === null || !skeleton.points.length) return [];
  const hits = [];
  automaton.scan(skeleton.points, (last, length, values) => {
    const start = last - length + 1;
    const end = last + 1;
    if (bounded(skeleton, start, end)) {
      for (const [category, word] of values) hits.push({ start, end, category, word });
    }
  });
  return hits;
}
