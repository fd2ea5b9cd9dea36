// The JavaScript engine against npm's mint-filter and modern-ahocorasick.
//
//   node bench/js/bench_engine.mjs            (needs .venv/bin/veil to compile the rules)
//
// For 1k, 10k and 100k-word dictionaries (seeded random CJK and Latin words plus the default rules): build
// time and p50/p99 time per 1 KB message, after untimed passes over the messages. Then recall: how many
// of the corpus's disguised-word messages (outgoing.jsonl, families word_*) each finds with the corpus rules,
// and how many benign messages it flags.
// The peers match raw text; Veil normalises first, and its "check" rows also run every contact detector
// (the second as the guard calls it, with a conversation: the window that joins numbers split over messages).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import mintFilter from 'mint-filter';
import AhoCorasick from 'modern-ahocorasick';
import { Engine } from '../../extension/engine/checker.js';
import { Tables, foldWord } from '../../extension/engine/normalise.js';

const Mint = mintFilter.default ?? mintFilter.Mint ?? mintFilter; // a CommonJS package
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CORPUS = join(ROOT, '..', 'shared', 'corpus');
const VEIL = join(ROOT, '.venv', 'bin', 'veil');

function compile(rulesDir) {
  const args = ['rules', 'compile', ...(rulesDir ? ['--rules', rulesDir] : [])];
  return JSON.parse(execFileSync(VEIL, args, { cwd: ROOT, maxBuffer: 256 << 20 }).toString());
}

function seeded(seed) {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

function randomWords(count, random) {
  const words = new Set();
  while (words.size < count) {
    if (random() < 0.5) {
      const length = 2 + Math.floor(random() * 3);
      words.add(Array.from({ length }, () => String.fromCodePoint(0x4e00 + Math.floor(random() * 0x5000))).join(''));
    } else {
      const length = 5 + Math.floor(random() * 6);
      words.add(Array.from({ length }, () => String.fromCharCode(97 + Math.floor(random() * 26))).join(''));
    }
  }
  return [...words];
}

function corpusRows() {
  const path = join(CORPUS, 'outgoing.jsonl');
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8').split('\n').filter((line) => line.trim()).map((line) => JSON.parse(line));
}

// 1 KB messages made of corpus texts (or filler when there is no corpus), the same on every run.
function messages(rows, count, random) {
  const texts = rows.length ? rows.map((row) => row.text) : ['好的，我们尽快处理 13812345678 ok thanks'];
  const out = [];
  for (let i = 0; i < count; i++) {
    let message = '';
    while (Buffer.byteLength(message) < 1024) message += `${texts[Math.floor(random() * texts.length)]} `;
    out.push(message);
  }
  return out;
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];
}

// Each matcher first reads the messages untimed, over and over for a fifth of a second (at least once):
// what is timed is the steady state of code that checks message after message, not the optimising compiler
// still at work on it (two thousand checks into a run, it still was), nor a new engine's caches filling.
// docs/performance.md gives the cost of a cold engine separately.
function time(fn, inputs, rounds = 3) {
  const warm = performance.now() + 200;
  do for (const input of inputs) fn(input);
  while (performance.now() < warm);
  const samples = [];
  for (let round = 0; round < rounds; round++) {
    for (const input of inputs) {
      const start = performance.now();
      fn(input);
      samples.push(performance.now() - start);
    }
  }
  samples.sort((a, b) => a - b);
  return { p50: percentile(samples, 50), p99: percentile(samples, 99) };
}

function timedBuild(build) {
  const start = performance.now();
  const value = build();
  return [value, performance.now() - start];
}

const ms = (value) => value.toFixed(3).padStart(9);

function printTable(header, rows) {
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => String(row[i]).length)));
  const line = (cells) => cells.map((cell, i) => String(cell).padEnd(widths[i])).join(' | ');
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('-|-'));
  for (const row of rows) console.log(line(row));
  console.log();
}

function matchers(payload, rawWords) {
  const [veil, veilBuild] = timedBuild(() => new Engine(payload));
  const [mint, mintBuild] = timedBuild(() => new Mint(rawWords));
  const [modern, modernBuild] = timedBuild(() => new AhoCorasick(rawWords));
  // as the guard calls it on Enter: with the conversation, whose window catches a number split over messages
  let turn = 0;
  const inConversation = (text) => veil.check(text, { conversation: `c${turn++ % 10}`, at: turn });
  return [
    { name: 'veil check (words + contacts)', build: veilBuild, find: (text) => veil.check(text).findings.filter((f) => f.type === 'word') },
    { name: 'veil check in a conversation', build: veilBuild, find: (text) => inConversation(text).findings.filter((f) => f.type === 'word') },
    { name: 'veil words only', build: veilBuild, find: (text) => veil.wordFindings(text) },
    { name: 'mint-filter', build: mintBuild, find: (text) => mint.filter(text, { replace: false }).words },
    { name: 'modern-ahocorasick', build: modernBuild, find: (text) => modern.search(text) },
  ];
}

if (!existsSync(VEIL)) {
  console.error(`${VEIL} is missing: the payload is compiled by the Python side`);
  process.exit(1);
}
const base = compile(null);
const rows = corpusRows();
const sample = messages(rows, 300, seeded(42));
const tables = new Tables(base.tables, base.unicode);

const speed = [];
for (const size of [1_000, 10_000, 100_000]) {
  const defaults = base.words.map(([, , word]) => word);
  const raw = [...new Set([...defaults, ...randomWords(size - defaults.length, seeded(size))])];
  const words = raw.map((word) => [foldWord(word, tables), 'bench', word]).filter(([skeleton]) => skeleton);
  for (const matcher of matchers({ ...base, words }, raw)) {
    const { p50, p99 } = time(matcher.find, sample);
    speed.push([size.toLocaleString('en'), matcher.name, ms(matcher.build), ms(p50), ms(p99)]);
  }
}
console.log(`Speed: ${sample.length} messages of ~1 KB, 3 timed rounds after 0.2 s of untimed ones; times in ms`
  + ` (node ${process.version})\n`);
printTable(['words', 'matcher', 'build', 'p50', 'p99'], speed);

const corpusRules = join(CORPUS, 'rules');
if (rows.length && existsSync(corpusRules)) {
  const payload = compile(corpusRules);
  const rawWords = [...new Set(payload.words.map(([, , word]) => word))];
  const disguised = rows.filter((row) => row.family?.startsWith('word_'));
  const benign = rows.filter((row) => row.family === 'benign');
  const families = [...new Set(disguised.map((row) => row.family))].sort();
  const recall = matchers(payload, rawWords).map((matcher) => {
    const found = (row) => matcher.find(row.text).length > 0;
    return [matcher.name, ...families.map((family) => {
      const group = disguised.filter((row) => row.family === family);
      return `${group.filter(found).length}/${group.length}`;
    }), `${disguised.filter(found).length}/${disguised.length}`, `${benign.filter(found).length}/${benign.length}`];
  });
  console.log('Recall on the corpus (corpus rules): messages with a disguised word found; benign messages flagged\n');
  printTable(['matcher', ...families, 'all word_*', 'benign flagged'], recall);
}
