// The engine: `check` decides whether a message may be sent; `mask` hides customer identifiers.
// Built from the payload that `veil rules compile` writes; the same algorithm as backend/engine/checker.py.

import {
  AstralStandIns, detectEmails, detectHandles, detectLinks, detectNumbers, detectorText, detectWallets, digitRuns,
} from './detectors.js';
import { buildAutomaton, findWords } from './matcher.js';
import { Tables, Workspace, plainStream, skeleton as skeletonOf } from './normalise.js';
import { ConversationWindow } from './window.js';

const SEVERITY = { allow: 0, log: 0, warn: 1, block: 2 };
const ALLOW = Symbol('allow'); // the category of allow-list entries in the automaton, which no rule can name
const MASK_KINDS = ['phone', 'email', 'id_card', 'bank_card', 'handle', 'link', 'crypto_wallet'];
const ALL_MASK_KINDS = new Set(MASK_KINDS); // read only

// "contact.phone" and the like, made once rather than for every finding (types and kinds are few).
const RULE_NAMES = new Map();
function ruleName(type, kind) {
  let byKind = RULE_NAMES.get(type);
  if (byKind === undefined) RULE_NAMES.set(type, (byKind = new Map()));
  let name = byKind.get(kind);
  if (name === undefined) byKind.set(kind, (name = `${type}.${kind}`));
  return name;
}

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

function originalSpan(stream, start, end) {
  return [stream.origin[start], stream.origin[end - 1] + 1];
}

function within(spans, start, end) {
  return spans.some(([a, b]) => a <= start && end <= b);
}

const SURROGATE = /[\ud800-\udfff]/;

// The original text by code point, so that spans slice it the way Python does. Looked at only when
// there is a finding to cut out: most messages have none.
class Original {
  constructor(text) {
    this.text = text;
    this.points = undefined; // null: no surrogates, string and code-point indices agree
  }

  slice(start, end) {
    if (this.points === undefined) this.points = SURROGATE.test(this.text) ? Array.from(this.text) : null;
    return this.points === null ? this.text.slice(start, end) : this.points.slice(start, end).join('');
  }
}

// A number inside a link or an e-mail address is part of that finding, not one of its own.
export function dropNested(findings) {
  const outer = findings.filter((f) => f.type !== 'word');
  return findings.filter((f) => f.type === 'word' || !outer.some((o) => o !== f && o.start <= f.start
    && f.end <= o.end && (o.end - o.start) > (f.end - f.start)));
}

function compareStrings(a, b) {
  return a === b ? 0 : compareCodePoints(a, b);
}

// Python's order of (start, end, type, category, rule).
function compareFindings(x, y) {
  return x.start - y.start || x.end - y.end || compareStrings(x.type, y.type)
    || compareStrings(x.category, y.category) || compareStrings(x.rule, y.rule);
}

export function dedupe(findings) {
  const unique = [];
  for (const f of findings.slice().sort(compareFindings)) { // a stable sort, as Python's
    if (!unique.length || compareFindings(unique[unique.length - 1], f) !== 0) unique.push(f);
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
    this.workspace = new Workspace(); // the skeleton and plain stream of the message being read
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
    // The words and the allow list share one automaton, so that a check reads the skeleton once; the
    // masker, which needs only the allow list, keeps a small one of its own.
    const keys = new Map();
    const add = (key, value) => {
      const values = keys.get(key);
      if (values) values.push(value);
      else keys.set(key, [value]);
    };
    for (const [skeletonText, category, entry] of payload.words) add(skeletonText, [category, entry]);
    const allow = new Set(payload.allow);
    for (const entry of allow) add(entry, [ALLOW, entry]);
    this.matcher = buildAutomaton(keys);
    this.allow = buildAutomaton(new Map([...allow].map((a) => [a, [[ALLOW, a]]])));
    this.window = new ConversationWindow(this.settings.window, windowConversations, this.tables);
    const contacts = this.settings.contacts;
    this.contactKinds = new Set(contacts.enabled ? contacts.detectors : []);
  }

  // Word findings and allow-list spans (in the original's code points), from one scan of the skeleton.
  words(skeleton, original) {
    const findings = [];
    const allowed = [];
    for (const hit of findWords(this.matcher, skeleton)) {
      const start = skeleton.origin[hit.start];
      const end = skeleton.origin[hit.end - 1] + 1;
      if (hit.category === ALLOW) allowed.push([start, end]);
      else findings.push(finding('word', hit.category, hit.word, start, end, original.slice(start, end)));
    }
    return { findings, allowed };
  }

  // Sensitive words only, the allow list applied: what the benchmark compares with bare matchers.
  wordFindings(text) {
    const { findings, allowed } = this.words(skeletonOf(text, this.tables, this.workspace), new Original(text));
    return allowed.length ? findings.filter((f) => !within(allowed, f.start, f.end)) : findings;
  }

  // The plain stream as the detectors index it (see detectors.detectorText); without characters beyond
  // the BMP that is the plain text itself.
  detectorText(plain) {
    return plain.astral ? detectorText(plain.chars, this.standIns) : plain.text;
  }

  // runs: the text's digit runs, if the caller has them already.
  detections(detectorTextValue, kinds, { identifiers, runs = null }) {
    const text = detectorTextValue;
    const found = detectNumbers(text, this.detectors, kinds, { identifiers, runs });
    if (kinds.has('email')) found.push(...detectEmails(text));
    if (kinds.has('link')) found.push(...detectLinks(text));
    if (kinds.has('crypto_wallet')) found.push(...detectWallets(text));
    if (kinds.has('handle')) found.push(...detectHandles(text, this.detectors));
    return found;
  }

  check(text, { conversation = null, direction = 'out', at = null } = {}) {
    const original = new Original(text);
    const skeleton = skeletonOf(text, this.tables, this.workspace);
    const plain = plainStream(text, this.tables, this.workspace);
    const plainText = this.detectorText(plain);
    const words = this.words(skeleton, original);
    let findings = words.findings;
    const outgoing = direction === 'out';
    const findingType = outgoing ? 'contact' : 'identifier';
    const kinds = outgoing ? this.contactKinds : ALL_MASK_KINDS;
    const runs = digitRuns(plainText); // for the detectors and the conversation window alike
    for (const d of this.detections(plainText, kinds, { identifiers: !outgoing, runs })) {
      const start = plain.origin[d.start];
      const end = plain.origin[d.end - 1] + 1;
      const rule = ruleName(findingType, d.kind);
      findings.push(finding(findingType, d.kind, rule, start, end, original.slice(start, end)));
    }
    if (outgoing && conversation !== null && conversation !== undefined && kinds.has('phone')) {
      const split = this.window.checkSplit(conversation, plainText, plain.points, this.detectors, at ?? null, runs);
      if (split !== null) {
        const [start, end] = originalSpan(plain, split[0], split[1]);
        findings.push(finding('contact', 'phone', 'contact.phone.split', start, end, original.slice(start, end)));
      }
    }
    const allowed = words.allowed;
    if (allowed.length) findings = findings.filter((f) => !within(allowed, f.start, f.end));
    findings = dropNested(dedupe(findings));
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
    const skeleton = skeletonOf(text, this.tables, this.workspace);
    const allowed = findWords(this.allow, skeleton).map((h) => originalSpan(skeleton, h.start, h.end));
    const plain = plainStream(text, this.tables, this.workspace);
    const plainText = this.detectorText(plain);
    const detections = this.detections(plainText, ALL_MASK_KINDS, { identifiers: true });
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
