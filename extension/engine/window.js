// A short memory per conversation, to catch a number split over consecutive outgoing messages.
//
// "我号码 138" then "1234 5678": neither message holds a phone number, the two together do.

import { contextBefore, digitRuns } from './detectors.js';
import { isWordCode } from './normalise.js';

function anyWordChar(points, start, end, tables) {
  for (let i = start; i < end; i++) if (isWordCode(points[i], tables)) return true;
  return false;
}

// text: the detector text of the plain stream; points: its code points (the same indices); runs: its
// digit runs, if the caller has them already.
export function messageEdge(text, points, detectors, at, tables, runs = digitRuns(text)) {
  let leading = '';
  let trailing = '';
  let leadSpan = null;
  if (runs.length && !anyWordChar(points, 0, runs[0].start, tables)) {
    leading = runs[0].digits;
    leadSpan = [runs[0].start, runs[0].end];
  }
  if (runs.length && !anyWordChar(points, runs[runs.length - 1].end, points.length, tables)) {
    trailing = runs[runs.length - 1].digits;
  }
  const whole = runs.length === 1 && Boolean(leading) && Boolean(trailing);
  const context = contextBefore(text, text.length, detectors.contact_context, text.length);
  return { edge: { at, leading, trailing, whole, context }, leadSpan };
}

// The same length rule as detectors.classifyRun for a number written without "+".
export function isPhoneLength(digits, context, detectors) {
  const n = digits.length;
  return (n >= 9 && n <= 15 && detectors.national_lengths.includes(n)) || (n >= 7 && n <= 8 && context);
}

export class ConversationWindow {
  // tables: the engine's normalise.Tables, which know which characters are letters or digits.
  constructor(settings, maxConversations, tables) {
    this.tables = tables;
    this.messages = settings.messages;
    this.seconds = settings.seconds;
    this.maxConversations = maxConversations;
    this.history = new Map(); // insertion order is recency: the first entry is the least recent
  }

  // Records this outgoing message; returns the plain span of its leading digits if they complete a
  // number begun in the messages before it, else null.
  checkSplit(conversation, text, points, detectors, at, runs = digitRuns(text)) {
    const { edge, leadSpan } = messageEdge(text, points, detectors, at, this.tables, runs);
    let past = this.history.get(conversation) ?? [];
    this.history.delete(conversation);
    if (at !== null) past = past.filter((e) => e.at === null || at - e.at <= this.seconds);
    let result = null;
    if (edge.leading) {
      let chain = edge.leading;
      let context = edge.context;
      let used = 0;
      for (let i = past.length - 1; i >= 0; i--) {
        const previous = past[i];
        if (!previous.trailing) break;
        chain = previous.trailing + chain;
        context = context || previous.context;
        used += 1;
        if (!previous.whole) break;
      }
      if (used && isPhoneLength(chain, context, detectors) && !isPhoneLength(edge.leading, edge.context, detectors)) {
        result = leadSpan;
      }
    }
    past.push(edge);
    this.history.set(conversation, past.slice(-this.messages)); // as past[-messages:] reads, even for 0
    while (this.history.size > this.maxConversations) this.history.delete(this.history.keys().next().value);
    return result;
  }
}

