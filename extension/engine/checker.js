// The engine: `check` decides whether a message may be sent; `mask` hides customer identifiers.
// Built from the payload that `veil rules compile` writes; the same algorithm as backend/engine/checker.py.

import {
  AstralStandIns, detectEmails, detectHandles, detectLinks, detectNumbers, detectorText, detectWallets,
} from './detectors.js';
import { buildAutomaton, findWords } from './matcher.js';
import { Tables, plainStream, skeleton as skeletonOf } from './normalise.js';
import { ConversationWindow } from './window.js';

const SEVERITY = { allow: 0, log: 0, warn: 1, block: 2 };
const MASK_KINDS = ['phone', 'email', 'id_card', 'bank_card', 'handle', 'link', 'crypto_wallet'];

function surrogateLast(unit) {
  if (unit >= 0xe000) return unit - 0x800;
  return unit >= 0xd800 ? unit + 0x2000 : unit;
}

// Python orders strings by code point, JavaScript by UTF-16 unit; they differ only past U+FFFF.
export function compareCodePoints(a, b) {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return surrogateLast(x) - surrogateLast(y);
  }
  return a.length - b.length;
}

function compareKeys(x, y) {
  for (let i = 0; i < x.length; i++) {
    const a = x[i];
    const b = y[i];
    if (a !== b) {
      if (typeof a === 'number') return a - b;
      return compareCodePoints(a, b);
    }
  }
  return 0;
}

function originalSpan(stream, start, end) {
  return [stream.origin[start], stream.origin[end - 1] + 1];
}

function within(spans, start, end) {
  return spans.some(([a, b]) => a <= start && end <= b);
}

// The original text by code point, so that spans slice it the way Python does. Looked at only when
// there is a finding to cut out: most messages have none.
class Original {
  constructor(text) {
    this.text = text;
    this.points = undefined; // null: no surrogates, string and code-point indices agree
  }

  slice(start, end) {
    if (this.points === undefined) this.points = /[\ud800-\udfff]/.test(this.text) ? Array.from(this.text) : null;
    return this.points === null ? this.text.slice(start, end) : this.points.slice(start, end).join('');
  }
}

// A number inside a link or an e-mail address is part of that finding, not one of its own.
export function dropNested(findings) {
  const outer = findings.filter((f) => f.type !== 'word');
  return findings.filter((f) => f.type === 'word' || !outer.some((o) => o !== f && o.start <= f.start
    && f.end <= o.end && (o.end - o.start) > (f.end - f.start)));
}

export function dedupe(findings) {
  const keyOf = (f) => [f.start, f.end, f.type, f.category, f.rule];
  const sorted = findings.map((f) => [keyOf(f), f]).sort((x, y) => compareKeys(x[0], y[0]));
  const unique = [];
  let previous = null;
  for (const [key, finding] of sorted) {
    if (previous === null || compareKeys(previous, key) !== 0) unique.push(finding);
    previous = key;
  }
  return unique;
}

function finding(type, category, rule, start, end, text) {
  return { type, category, rule, start, end, text };
}

export class Engine {
  // Built once from a compiled payload; `check` and `mask` are then pure apart from the window.
  constructor(payload, { windowConversations = 10_000 } = {}) {
    this.payload = payload;
    this.version = payload.hash;
    this.settings = payload.settings;
    this.tables = new Tables(payload.tables, payload.unicode);
    const raw = payload.detectors;
    this.standIns = new AstralStandIns([
      raw.handle_keywords.map(([keyword]) => keyword), raw.stop_handles, raw.contact_context,
      raw.reference_context,
    ]);
    const word = (text) => this.standIns.word(text);
    this.detectors = {
      ...raw,
      handle_keywords: raw.handle_keywords.map(([keyword, strong]) => [word(keyword), strong]),
      stop_handles: raw.stop_handles.map(word),
      contact_context: raw.contact_context.map(word),
      reference_context: raw.reference_context.map(word),
    };
    const words = new Map();
    for (const [skeletonText, category, entry] of payload.words) {
      const values = words.get(skeletonText);
      if (values) values.push([category, entry]);
      else words.set(skeletonText, [[category, entry]]);
    }
    this.words = buildAutomaton(words);
    this.allow = buildAutomaton(new Map(payload.allow.map((a) => [a, [['allow', a]]])));
    this.window = new ConversationWindow(this.settings.window, windowConversations, this.tables);
    const contacts = this.settings.contacts;
    this.contactKinds = new Set(contacts.enabled ? contacts.detectors : []);
  }

  allowedSpans(skeleton) {
    return findWords(this.allow, skeleton).map((h) => originalSpan(skeleton, h.start, h.end));
  }

  // Sensitive words only, the allow list applied: what the benchmark compares with bare matchers.
  wordFindings(text) {
    const skeleton = skeletonOf(text, this.tables);
    const hits = this.wordHits(skeleton, new Original(text));
    if (!hits.length) return hits;
    const allowed = this.allowedSpans(skeleton);
    return hits.filter((f) => !within(allowed, f.start, f.end));
  }

  wordHits(skeleton, original) {
    return findWords(this.words, skeleton).map((hit) => {
      const [start, end] = originalSpan(skeleton, hit.start, hit.end);
      return finding('word', hit.category, hit.word, start, end, original.slice(start, end));
    });
  }

  // The plain stream as the detectors index it (see detectors.detectorText); without characters beyond
  // the BMP that is the plain text itself.
  detectorText(plain) {
    return plain.astral ? detectorText(plain.chars, this.standIns) : plain.text;
  }

  detections(detectorTextValue, kinds, { identifiers }) {
    const text = detectorTextValue;
    const found = detectNumbers(text, this.detectors, kinds, { identifiers });
    if (kinds.has('email')) found.push(...detectEmails(text));
    if (kinds.has('link')) found.push(...detectLinks(text));
    if (kinds.has('crypto_wallet')) found.push(...detectWallets(text));
    if (kinds.has('handle')) found.push(...detectHandles(text, this.detectors));
    return found;
  }

  check(text, { conversation = null, direction = 'out', at = null } = {}) {
    const original = new Original(text);
    const skeleton = skeletonOf(text, this.tables);
    const plain = plainStream(text, this.tables);
    const plainText = this.detectorText(plain);
    let findings = this.wordHits(skeleton, original);
    const outgoing = direction === 'out';
    const findingType = outgoing ? 'contact' : 'identifier';
    const kinds = outgoing ? this.contactKinds : new Set(MASK_KINDS);
    for (const d of this.detections(plainText, kinds, { identifiers: !outgoing })) {
      const [start, end] = originalSpan(plain, d.start, d.end);
      findings.push(finding(findingType, d.kind, `${findingType}.${d.kind}`, start, end, original.slice(start, end)));
    }
    if (outgoing && conversation !== null && conversation !== undefined && kinds.has('phone')) {
      const split = this.window.checkSplit(conversation, plainText, plain.chars, this.detectors, at ?? null);
      if (split !== null) {
        const [start, end] = originalSpan(plain, split[0], split[1]);
        findings.push(finding('contact', 'phone', 'contact.phone.split', start, end, original.slice(start, end)));
      }
    }
    const allowed = findings.length ? this.allowedSpans(skeleton) : []; // most messages have nothing to exempt
    findings = dropNested(dedupe(findings.filter((f) => !within(allowed, f.start, f.end))));
    return { action: this.action(findings, direction), findings };
  }

  action(findings, direction) {
    if (direction !== 'out') return 'allow'; // customers are not stopped; what they send is masked and logged
    let action = 'allow';
    for (const f of findings) {
      const actions = this.settings.actions;
      const wanted = f.type === 'word'
        ? (Object.hasOwn(actions, f.category) ? actions[f.category] : 'block')
        : this.settings.contacts.action;
      if (SEVERITY[wanted] > SEVERITY[action]) action = wanted;
    }
    return action;
  }

  mask(text) {
    // the tenant switched masking off (settings.toml: mask.incoming)
    if (!this.settings.mask.incoming) return { text, spans: [] };
    const allowed = this.allowedSpans(skeletonOf(text, this.tables));
    const plain = plainStream(text, this.tables);
    const plainText = this.detectorText(plain);
    const detections = this.detections(plainText, new Set(MASK_KINDS), { identifiers: true });
    detections.sort((a, b) => a.start - b.start || (b.end - b.start) - (a.end - a.start)
      || (a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : 0));
    const chosen = [];
    for (const d of detections) {
      if (chosen.length && d.start < chosen[chosen.length - 1].end) continue; // digits inside an e-mail address
      chosen.push(d);
    }
    const chars = Array.from(text);
    const spans = [];
    const keepLast = this.settings.mask.style === 'last4' ? 4 : 0;
    for (const d of chosen) {
      const [start, end] = originalSpan(plain, d.start, d.end);
      if (within(allowed, start, end)) continue;
      const indices = d.maskPositions.length ? d.maskPositions : Array.from({ length: d.end - d.start }, (_, i) => d.start + i);
      let positions = [...new Set(indices.map((p) => plain.origin[p]))].sort((a, b) => a - b);
      if (keepLast && ['phone', 'bank_card', 'id_card'].includes(d.kind)) positions = positions.slice(0, -keepLast);
      for (const p of positions) chars[p] = '*';
      spans.push({ start, end, type: d.kind });
    }
    return { text: chars.join(''), spans };
  }
}
