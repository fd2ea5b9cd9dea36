// Masks customer identifiers on screen, before the page is painted.
//
// The content script's MutationObserver hands every DOM change to `process` synchronously: observer
// callbacks run as microtasks, before the next frame, so a number the console inserts is rewritten
// before anyone sees it, and a console re-rendering its own text gets masked again on the same tick.
// Text is masked per "unit": an element and the text reachable from it through inline elements, so a
// number split over <a>+86</a> <span>138</span><span>1234</span>5678 is seen whole. Originals are kept
// in memory (for the reader, and for a reveal with a restore grant), never written back to the page.

import { safeClosest, safeMatches, safeQueryAll, textOf } from './profile.js';

// Elements that do not start a new line of text: a unit reaches through them.
const INLINE = new Set([
  'A', 'ABBR', 'B', 'BDI', 'BDO', 'CITE', 'CODE', 'DATA', 'DEL', 'DFN', 'EM', 'FONT', 'I', 'INS', 'KBD',
  'LABEL', 'MARK', 'Q', 'S', 'SAMP', 'SMALL', 'SPAN', 'STRONG', 'SUB', 'SUP', 'TIME', 'U', 'VAR', 'WBR',
]);
// Never rewritten: not shown as text, or typed by the agent.
const SKIP_TAGS = new Set(['SCRIPT', 'STYLE', 'NOSCRIPT', 'TEMPLATE', 'TEXTAREA', 'INPUT', 'SELECT', 'OPTION']);
// Attributes that reach the screen as tooltips, accessible names or link targets.
export const MASKED_ATTRIBUTES = ['title', 'aria-label', 'aria-description', 'alt', 'placeholder', 'href'];
const UI_ATTRIBUTE = 'data-veil-ui';
const NAME_GATHER_MS = 50; // names seen in one render are asked for in one request
const NAME_RETRY_MS = 30_000; // an unanswered name (offline) is asked for again after this
const MAX_NAMES_ASKED = 50; // the server's limit per request
const MASK_CACHE_SIZE = 5000; // texts whose masking is remembered (oldest forgotten first)
const TEXT_NODE = 3;
const ELEMENT_NODE = 1;

export class Masker {
  /**
   * engine: the JavaScript engine (extension/engine/checker.js); profile: the console profile;
   * askNames(identifiers): resolves to {ok, pseudonyms: {identifier: "客户-7F3AK9"}} from the server.
   */
  constructor({ engine, profile, askNames = null, setTimer = (fn, ms) => setTimeout(fn, ms) }) {
    this.engine = engine;
    this.regions = profile.mask?.regions?.length ? profile.mask.regions : null;
    this.skip = (profile.mask?.skip ?? []).concat(profile.composer?.input ?? []).join(', ') || null;
    this.names = (profile.mask?.names ?? []).join(', ') || null;
    // Inline elements that are not part of the text around them (a message's time): units of their own.
    // The message text's `exclude` says which they are; `mask.separate` may add more.
    this.separate = [...(profile.mask?.separate ?? []), ...excludes(profile.messages?.text)].join(', ') || null;
    this.askNames = askNames;
    this.setTimer = setTimer;
    this.knownNames = new Map(); // a customer's identifier as shown → the pseudonym the panel uses
    this.pendingNames = new Set();
    this.askedNames = new Map(); // identifier → when it was last asked for
    this.nameTimer = null;
    this.original = new WeakMap(); // text node → the console's own text
    this.written = new WeakMap(); // text node → the masked text this masker wrote
    this.attributeOriginal = new WeakMap(); // element → Map(attribute → the console's own value)
    this.attributeWritten = new WeakMap(); // element → Map(attribute → the value this masker wrote)
    this.masked = 0; // identifiers masked so far (the popup and the benchmark read it)
    this.revealed = new Set(); // originals shown unmasked for now (content/reveal.js, with a restore key)
  }

  // ---- reading through the masks ---------------------------------------------------------------------

  // A text node's text as the console wrote it.
  originalOf(node) {
    const written = this.written.get(node);
    return written !== undefined && node.nodeValue === written ? this.original.get(node) : node.nodeValue;
  }

  // An element's text as the console wrote it (textContent, seeing through the masks).
  textOf(element) {
    return textOf(element, this.nodeText);
  }

  nodeText = (node) => this.originalOf(node);

  attributeOf(element, name) {
    const written = this.attributeWritten.get(element)?.get(name);
    const value = element.getAttribute(name);
    return written !== undefined && value === written ? this.attributeOriginal.get(element).get(name) : value;
  }

  // ---- what to mask -------------------------------------------------------------------------------

  isExcluded(element) {
    for (let el = element; el; el = el.parentElement) {
      if (SKIP_TAGS.has(el.tagName) || el.hasAttribute(UI_ATTRIBUTE) || isEditable(el)) return true;
    }
    return this.skip ? safeClosest(element, this.skip) !== null : false;
  }

  inRegion(element) {
    if (element.tagName === 'TITLE') return true; // the tab's title
    if (!this.regions) return element.ownerDocument.body?.contains(element) ?? false;
    return this.regions.some((region) => safeClosest(element, region) !== null);
  }

  // A customer's name (profile `mask.names`) is a unit of its own even when it is an inline element.
  isName(element) {
    return this.names !== null && safeMatches(element, this.names);
  }

  isSeparate(element) {
    return this.isName(element) || (this.separate !== null && safeMatches(element, this.separate));
  }

  unitOf(node) {
    let element = node.nodeType === ELEMENT_NODE ? node : node.parentElement;
    while (element && INLINE.has(element.tagName) && !this.isSeparate(element) && element.parentElement) {
      element = element.parentElement;
    }
    return element;
  }

  // The unit's own text nodes: those reachable without entering another block element.
  textNodesOf(unit) {
    const nodes = [];
    const visit = (parent) => {
      for (let child = parent.firstChild; child; child = child.nextSibling) {
        if (child.nodeType === TEXT_NODE) nodes.push(child);
        else if (child.nodeType === ELEMENT_NODE && INLINE.has(child.tagName) && !child.hasAttribute(UI_ATTRIBUTE)
          && !this.isSeparate(child)) {
          visit(child);
        }
      }
    };
    visit(unit);
    return nodes;
  }

  // ---- masking ------------------------------------------------------------------------------------

  maskUnit(unit) {
    if (!unit || !this.inRegion(unit) || this.isExcluded(unit)) return;
    const nodes = this.textNodesOf(unit);
    if (nodes.length === 0) return;
    const texts = nodes.map((node) => this.originalOf(node));
    const whole = texts.join('');
    if (whole.trim() === '') return;
    const result = this.maskText(whole);
    let shown = result.text;
    this.masked += result.spans.length;
    if (nodes.length > 1) shown = this.maskEachNode(texts, result.spans, shown);
    if (this.revealed.size > 0) shown = this.showRevealed(whole, result.spans, shown);
    let renamed = false;
    if (result.spans.length > 0 && this.isName(unit) && isWholly(whole, result.spans)) {
      const name = this.nameFor(whole, unit.ownerDocument); // until the server answers, the mask stands
      if (name) [shown, renamed] = [name, true];
    }
    this.distribute(nodes, texts, shown, renamed);
  }

  // The engine's answer for a text, remembered: a console that rebuilds its whole list on every new
  // message hands the same texts over again and again.
  maskText(text) {
    let result = this.maskCache.get(text);
    if (result === undefined) {
      result = this.engine.mask(text);
      if (this.maskCache.size >= MASK_CACHE_SIZE) this.maskCache.delete(this.maskCache.keys().next().value);
      this.maskCache.set(text, result);
    }
    return result;
  }

  set engine(engine) {
    this.currentEngine = engine; // new rules: what was remembered no longer holds
    this.maskCache = new Map();
  }

  get engine() {
    return this.currentEngine;
  }

  // Each text node is also masked on its own: a console may glue a time or a label to the end of the text
  // with no space ("…13812345678" + "12:56"), which reads as one longer number when joined.
  maskEachNode(texts, unitSpans, shown) {
    const points = Array.from(shown);
    let offset = 0;
    for (const text of texts) {
      const own = this.maskText(text);
      const length = Array.from(text).length;
      if (own.spans.length > 0) {
        const ownPoints = Array.from(own.text);
        const original = Array.from(text);
        for (let i = 0; i < length; i++) if (ownPoints[i] !== original[i]) points[offset + i] = ownPoints[i];
        this.masked += own.spans.filter((span) => !unitSpans.some(
          (u) => u.start < offset + span.end && offset + span.start < u.end)).length;
      }
      offset += length;
    }
    return points.join('');
  }

  // The pseudonym a customer named by their identifier is shown under, once the server has said it
  // (the server keys pseudonyms with a secret the extension never holds, so they match the panel's).
  nameFor(text, document) {
    const identifier = text.trim();
    const known = this.knownNames.get(identifier);
    if (known) return known;
    const asked = this.askedNames.get(identifier);
    if (this.askNames && (asked === undefined || Date.now() - asked > NAME_RETRY_MS)) {
      this.pendingNames.add(identifier);
      if (this.nameTimer === null) this.nameTimer = this.setTimer(() => this.askForNames(document), NAME_GATHER_MS);
    }
    return null;
  }

  async askForNames(document) {
    this.nameTimer = null;
    const batch = [...this.pendingNames].slice(0, MAX_NAMES_ASKED);
    for (const identifier of batch) {
      this.pendingNames.delete(identifier);
      this.askedNames.set(identifier, Date.now());
    }
    let answer = null;
    try {
      answer = await this.askNames(batch);
    } catch {
      answer = null; // no worker to answer: asked again after NAME_RETRY_MS
    }
    if (answer?.ok) {
      for (const [identifier, name] of Object.entries(answer.pseudonyms ?? {})) {
        if (typeof name === 'string') this.knownNames.set(identifier, name);
      }
      for (const element of safeQueryAll(document, this.names)) this.maskUnit(element);
    }
    if (this.pendingNames.size > 0 && this.nameTimer === null) {
      this.nameTimer = this.setTimer(() => this.askForNames(document), NAME_GATHER_MS);
    }
  }

  // Writes `shown` back over the nodes, each taking as many code points as its original had (masking
  // keeps the count); a pseudonym (`renamed`), which does not, goes wholly into the first node.
  distribute(nodes, texts, shown, renamed = false) {
    let parts;
    if (renamed) {
      parts = nodes.map((_, i) => (i === 0 ? shown : ''));
    } else {
      const points = Array.from(shown);
      let offset = 0;
      parts = texts.map((text) => {
        const length = Array.from(text).length;
        const part = points.slice(offset, offset + length).join('');
        offset += length;
        return part;
      });
    }
    nodes.forEach((node, i) => {
      if (parts[i] === texts[i]) {
        this.written.delete(node);
        if (node.nodeValue !== texts[i]) node.nodeValue = texts[i];
        return;
      }
      this.original.set(node, texts[i]);
      this.written.set(node, parts[i]);
      if (node.nodeValue !== parts[i]) node.nodeValue = parts[i];
    });
  }

  maskAttributes(element) {
    if (!this.inRegion(element) || this.isExcluded(element)) return;
    for (const name of MASKED_ATTRIBUTES) {
      if (!element.hasAttribute(name)) continue;
      const original = this.attributeOf(element, name);
      const shown = this.maskAttributeValue(name, original);
      let written = this.attributeWritten.get(element);
      if (shown === original) {
        written?.delete(name);
        continue;
      }
      if (!written) {
        written = new Map();
        this.attributeWritten.set(element, written);
        this.attributeOriginal.set(element, new Map());
      }
      this.attributeOriginal.get(element).set(name, original);
      written.set(name, shown);
      if (element.getAttribute(name) !== shown) element.setAttribute(name, shown);
    }
  }

  maskAttributeValue(name, value) {
    let text = value;
    if (name === 'href') {
      try {
        text = decodeURIComponent(value);
      } catch {
        text = value;
      }
    }
    const result = this.maskText(text);
    if (result.spans.length === 0) return value;
    this.masked += result.spans.length;
    return result.text;
  }

  // ---- revealing (content/reveal.js) ----------------------------------------------------------------

  // The identifiers masked in the unit around `node`: [{start, end, original}] in code points of the
  // unit's text, and where `node`'s own text starts in it.
  spansAround(node) {
    const unit = this.unitOf(node);
    if (!unit || !this.inRegion(unit) || this.isExcluded(unit)) return { spans: [], offset: 0 };
    const nodes = this.textNodesOf(unit);
    const texts = nodes.map((n) => this.originalOf(n));
    const points = Array.from(texts.join(''));
    let offset = 0;
    for (let i = 0; i < nodes.length && nodes[i] !== node; i++) offset += Array.from(texts[i]).length;
    const spans = this.maskText(points.join('')).spans.map((span) => ({
      start: span.start, end: span.end, original: points.slice(span.start, span.end).join(''),
    }));
    return { spans, offset };
  }

  // An identifier (as the console wrote it) is shown unmasked until `conceal`.
  reveal(original, root) {
    this.revealed.add(original);
    this.maskTree(root);
  }

  conceal(original, root) {
    if (this.revealed.delete(original)) this.maskTree(root);
  }

  concealAll(root) {
    if (this.revealed.size === 0) return;
    this.revealed.clear();
    this.maskTree(root);
  }

  showRevealed(whole, spans, shown) {
    const original = Array.from(whole);
    const points = Array.from(shown);
    for (const span of spans) {
      if (!this.revealed.has(original.slice(span.start, span.end).join(''))) continue;
      for (let i = span.start; i < span.end; i++) points[i] = original[i];
    }
    return points.join('');
  }

  // ---- the observer's entry points ------------------------------------------------------------------

  // Everything under `root` (at start, and for a subtree the console inserts).
  maskTree(root) {
    const units = new Set();
    const elements = [];
    this.collect(root, units, elements);
    for (const unit of units) this.maskUnit(unit);
    for (const element of elements) this.maskAttributes(element);
  }

  collect(root, units, elements) {
    if (root.nodeType === TEXT_NODE) {
      units.add(this.unitOf(root));
      return;
    }
    if (root.nodeType !== ELEMENT_NODE) return;
    const document = root.ownerDocument;
    const walker = document.createTreeWalker(root, 1 | 4 /* SHOW_ELEMENT | SHOW_TEXT */);
    for (let node = root; node; node = walker.nextNode()) {
      if (node.nodeType === TEXT_NODE) units.add(this.unitOf(node));
      else if (MASKED_ATTRIBUTES.some((name) => node.hasAttribute(name))) elements.push(node);
    }
  }

  // MutationRecords from the content script's observer.
  process(records) {
    const units = new Set();
    const elements = new Set();
    for (const record of records) {
      if (record.type === 'characterData') {
        if (this.written.get(record.target) === record.target.nodeValue) continue; // our own write
        units.add(this.unitOf(record.target));
      } else if (record.type === 'attributes') {
        const written = this.attributeWritten.get(record.target)?.get(record.attributeName);
        if (written !== undefined && written === record.target.getAttribute(record.attributeName)) continue;
        elements.add(record.target);
      } else {
        const listed = [];
        for (const node of record.addedNodes) this.collect(node, units, listed);
        for (const element of listed) elements.add(element);
        if (record.removedNodes.length > 0 && record.target.nodeType === ELEMENT_NODE) {
          units.add(this.unitOf(record.target)); // what is left may now read differently
        }
      }
    }
    for (const unit of units) if (unit?.isConnected) this.maskUnit(unit);
    for (const element of elements) if (element.isConnected) this.maskAttributes(element);
  }
}

// The `exclude` selectors of a profile field (a field, or a list of them).
function excludes(field) {
  if (Array.isArray(field)) return field.flatMap(excludes);
  return field && typeof field === 'object' && field.exclude ? [field.exclude] : [];
}

// The agent types in editable elements (isContentEditable, or the attribute where a DOM lacks it).
function isEditable(element) {
  if (element.isContentEditable) return true;
  const value = element.getAttribute('contenteditable');
  return value === '' || value === 'true' || value === 'plaintext-only';
}

// Whether the identifiers found cover all of the text but spaces (a name that is nothing but a number).
function isWholly(text, spans) {
  const points = Array.from(text);
  const covered = new Array(points.length).fill(false);
  for (const span of spans) for (let i = span.start; i < span.end; i++) covered[i] = true;
  return points.every((ch, i) => covered[i] || /\s/.test(ch));
}
