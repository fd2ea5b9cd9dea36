import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Engine, compareCodePoints } from '../../extension/engine/checker.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const VEIL = join(ROOT, '.venv', 'bin', 'veil');
const VECTORS = join(ROOT, 'shared_rules', 'vectors');
const missing = existsSync(VEIL) ? false : `${VEIL} is missing: the payload is compiled by the Python side`;

let payload;
before(() => {
  if (missing) return;
  payload = JSON.parse(execFileSync(VEIL, ['rules', 'compile'], { cwd: ROOT, maxBuffer: 64 << 20 }).toString());
});

const spans = (result) => result.findings.map((f) => [f.type, f.category, f.start, f.end, f.text]);

describe('Engine.check', { skip: missing }, () => {
  it('blocks a phone number and reports code-point offsets past emoji', () => {
    const result = new Engine(payload).check('👋😀 我的电话 13812345678');
    assert.equal(result.action, 'block');
    assert.deepEqual(spans(result), [['contact', 'phone', 8, 19, '13812345678']]);
  });

  it('finds disguised words and applies the category action', () => {
    const engine = new Engine(payload);
    assert.deepEqual(spans(engine.check('私 私 下 交 易')), [['word', 'private_deal', 0, 9, '私 私 下 交 易']]);
    assert.equal(engine.check('sixia jiaoyi').action, 'block');
    assert.equal(engine.check('好的').action, 'allow');
  });

  it('reads characters as the Unicode table in the payload says', () => {
    assert.equal(new Engine(payload).check('私下交易').findings[0]?.category, 'private_deal');
    // A Python that did not know 下 would not call it a letter: the word is no longer there.
    const gap = 0x4e0b;
    const older = { ...payload, unicode: { version: 'test', unassigned: `${gap.toString(16)}+0` } };
    assert.deepEqual(new Engine(older).check('私下交易').findings, []);
  });

  it('drops findings inside an allow-list span', () => {
    assert.deepEqual(new Engine(payload).check('idiotproof').findings, []);
  });

  it('reports identifiers but never stops incoming messages', () => {
    const result = new Engine(payload).check('我的手机 13812345678', { direction: 'in' });
    assert.equal(result.action, 'allow');
    assert.deepEqual(spans(result), [['identifier', 'phone', 5, 16, '13812345678']]);
  });

  it('joins a number split over messages of one conversation', () => {
    const engine = new Engine(payload);
    assert.equal(engine.check('我号码 138', { conversation: 'c1' }).action, 'allow');
    const second = engine.check('1234 5678', { conversation: 'c1' });
    assert.deepEqual(spans(second), [['contact', 'phone', 0, 9, '1234 5678']]);
    assert.equal(second.findings[0].rule, 'contact.phone.split');
    assert.equal(engine.check('1234 5678', { conversation: 'c2' }).action, 'allow');
  });

  it('forgets old messages when times are given, and the least recent conversations', () => {
    const engine = new Engine(payload, { windowConversations: 2 });
    engine.check('我号码 138', { conversation: 'a', at: 0 });
    assert.equal(engine.check('1234 5678', { conversation: 'a', at: 301 }).action, 'allow');
    engine.check('我号码 138', { conversation: 'b' });
    engine.check('x', { conversation: 'c' });
    engine.check('y', { conversation: 'd' });
    assert.deepEqual([...engine.window.history.keys()], ['c', 'd']);
  });
});

describe('Engine buffers', { skip: missing }, () => {
  // The engine writes every message's skeleton and plain stream into the same arrays (normalise.Workspace).
  it('answers a message the same before and after others', () => {
    const engine = new Engine(payload);
    const first = '私下交易 加我微信 wxid_abc123，电话 13812345678';
    const before = engine.check(first);
    engine.check('ｐａｙ ｍｅ 𠀀😀 jane.doe@proton.me '.repeat(40));
    engine.mask('+86 152-3191-9143');
    engine.wordFindings('私私下下交易');
    assert.deepEqual(engine.check(first), before);
    assert.equal(before.findings.length, 3);
  });

  it('reads a message longer than the arrays it keeps', () => {
    const engine = new Engine(payload);
    const filler = 'ordinary words, 普通的话 '.repeat(4000); // about 84,000 code points
    const result = engine.check(`${filler}私下交易 13812345678`);
    assert.deepEqual(spans(result), [
      ['word', 'private_deal', filler.length, filler.length + 4, '私下交易'],
      ['contact', 'phone', filler.length + 5, filler.length + 16, '13812345678'],
    ]);
    assert.deepEqual(spans(engine.check('私下交易')), [['word', 'private_deal', 0, 4, '私下交易']]);
  });
});

describe('Engine.mask', { skip: missing }, () => {
  it('keeps the last four digits and the text length', () => {
    const result = new Engine(payload).mask('+86 152-3191-9143 / jane_doe@proton.me');
    assert.equal(result.text, '+** ***-****-9143 / ********@proton.me');
    assert.deepEqual(result.spans, [{ start: 0, end: 17, type: 'phone' }, { start: 20, end: 38, type: 'email' }]);
  });

  it('masks by code point around astral characters', () => {
    const result = new Engine(payload).mask('𠀀😀 13812345678');
    assert.equal(result.text, '𠀀😀 *******5678');
    assert.deepEqual(result.spans, [{ start: 3, end: 14, type: 'phone' }]);
  });

  it('hides every digit in full style', () => {
    const full = { ...payload, settings: { ...payload.settings, mask: { incoming: true, style: 'full' } } };
    assert.equal(new Engine(full).mask('13812345678').text, '***********');
  });

  it('leaves text as it is when the tenant switched masking off, but still reports identifiers', () => {
    const off = { ...payload, settings: { ...payload.settings, mask: { ...payload.settings.mask, incoming: false } } };
    const engine = new Engine(off);
    assert.deepEqual(engine.mask('电话 13812345678'), { text: '电话 13812345678', spans: [] });
    assert.equal(engine.check('电话 13812345678', { direction: 'in' }).findings[0].category, 'phone');
  });
});

describe('shared vectors', { skip: missing }, () => {
  const files = existsSync(VECTORS) ? readdirSync(VECTORS).filter((name) => name.endsWith('.jsonl')).sort() : [];
  for (const name of files) {
    it(name, () => {
      const engine = new Engine(payload); // each file is one sequence
      const lines = readFileSync(join(VECTORS, name), 'utf8').split('\n').filter((line) => line.trim());
      for (const line of lines) {
        const vector = JSON.parse(line);
        if (vector.op === 'mask') {
          assert.deepEqual(engine.mask(vector.text), vector.expect, vector.id);
        } else {
          const result = engine.check(vector.text, {
            conversation: vector.conversation ?? null, direction: vector.direction ?? 'out', at: vector.at ?? null,
          });
          const findings = result.findings.map(({ type, category, start, end }) => ({ type, category, start, end }));
          assert.deepEqual({ action: result.action, findings }, vector.expect, vector.id);
        }
      }
    });
  }
});

describe('compareCodePoints', () => {
  it('orders as Python does, astral characters after the rest of the BMP', () => {
    assert.ok(compareCodePoints('\uffff', '𠀀') < 0);
    assert.ok(compareCodePoints('a', 'b') < 0);
    assert.equal(compareCodePoints('字', '字'), 0);
    assert.ok(compareCodePoints('ab', 'a') > 0);
  });
});
