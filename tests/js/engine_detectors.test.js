import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  AstralStandIns, chinaIdValid, classifyRun, detectEmails, detectHandles, detectLinks, detectNumbers, detectorText,
  detectWallets, digitRuns, luhnValid,
} from '../../extension/engine/detectors.js';

const detectors = {
  handle_keywords: [['微信', true], ['wechat', true], ['whatsapp', false], ['line', false]],
  stop_handles: ['account', 'business'],
  contact_context: ['电话', 'call'],
  reference_context: ['订单', 'order'],
  phone_lengths: { 1: [10], 44: [9, 10], 86: [11] },
  national_lengths: [10, 11, 12, 13],
};
const ALL = new Set(['phone', 'email', 'id_card', 'bank_card', 'handle', 'link', 'crypto_wallet']);

const digitsOf = (text) => digitRuns(text).map((run) => run.digits);

describe('digitRuns', () => {
  it('joins digits across short separators', () => {
    assert.deepEqual(digitsOf('138 0013-8000'), ['13800138000']);
    assert.deepEqual(digitsOf('1 3 8    0'), ['138', '0']);
  });

  it('reads Chinese numerals, number words and o/l/i after a digit', () => {
    assert.deepEqual(digitsOf('壹三八 one two'), ['13812']);
    assert.deepEqual(digitsOf('壹三八, someone'), ['138']);
    assert.deepEqual(digitsOf('138oo13800'), ['1380013800']);
    assert.deepEqual(digitsOf('look'), []);
  });

  it('leaves out dates, times, prices and masked numbers', () => {
    assert.deepEqual(digitsOf('2026-12-15 12:30 ¥1,299.00 138****5678'), ['138', '5678']);
  });

  it('reads number words only as whole words, and o/l/i only after a digit', () => {
    assert.deepEqual(digitsOf('3one two'), ['312']);
    assert.deepEqual(digitsOf('twoo bone stone'), []);
    assert.deepEqual(digitsOf('1ok 1ol 和 1ol1'), ['1', '1011']); // "1ol" is more letters than digits
    assert.deepEqual(digitsOf('1 ----2'), ['1', '2']); // four separators part two runs
  });

  it('gives each digit its position, and reads a very long run whole', () => {
    const [run] = digitRuns('壹 three-8');
    assert.deepEqual(run.positions, [0, 2, 8]);
    assert.equal(run.end, 9);
    const long = digitRuns(`${'1'.repeat(60_000)} 2`);
    assert.equal(long.length, 1);
    assert.equal(long[0].digits, `${'1'.repeat(60_000)}2`);
    assert.equal(long[0].positions.length, 60_001);
  });

  it('notes a leading plus', () => {
    const [run] = digitRuns('tel +86 138');
    assert.equal(run.international, true);
    assert.equal(run.start, 4);
  });
});

describe('checksums', () => {
  it('Luhn', () => {
    assert.equal(luhnValid('4111111111111111'), true);
    assert.equal(luhnValid('4111111111111112'), false);
  });

  it('Chinese resident ID', () => {
    assert.equal(chinaIdValid('33010619600226915', '9'), true);
    assert.equal(chinaIdValid('33010619600226915', '8'), false);
    assert.equal(chinaIdValid('11010519491231002', 'x'), true);
  });
});

describe('classifyRun', () => {
  const classify = (text, identifiers = false) => classifyRun(text, digitRuns(text)[0], detectors, { identifiers });

  it('tells phones, cards and IDs apart', () => {
    assert.equal(classify('13812345678'), 'phone');
    assert.equal(classify('+44 20 7946 0958'), 'phone');
    assert.equal(classify('4111 1111 1111 1111'), 'bank_card');
    assert.equal(classify('330106196002269159', true), 'id_card');
    assert.equal(classify('4008001234'), null); // a company line
    assert.equal(classify('1234567'), null);
    assert.equal(classify('call 1234567'), 'phone');
  });
});

describe('detectNumbers', () => {
  it('skips codes and references', () => {
    assert.deepEqual(detectNumbers('sf13812345678', detectors, ALL, { identifiers: false }), []);
    assert.deepEqual(detectNumbers('订单: 13812345678', detectors, ALL, { identifiers: false }), []);
    const [found] = detectNumbers('11010519491231002x', detectors, ALL, { identifiers: true });
    assert.equal(found.kind, 'id_card');
    assert.equal(found.end, 18);
  });
});

describe('detectEmails', () => {
  it('finds plain and spelled-out addresses', () => {
    assert.deepEqual(detectEmails('mail jane.doe@proton.me').map((d) => [d.start, d.end]), [[5, 23]]);
    const [spelled] = detectEmails('jane dot doe at proton dot me');
    assert.equal(spelled.start, 0);
    assert.deepEqual(spelled.maskPositions, [...Array(12).keys()]);
  });

  it('does not read "look at example.com" as an address', () => {
    assert.deepEqual(detectEmails('look at example.com'), []);
  });
});

describe('detectHandles', () => {
  it('needs a sign, a strong keyword or a marked filler', () => {
    assert.deepEqual(detectHandles('微信 janedoe', detectors).map((d) => [d.start, d.end]), [[0, 10]]);
    assert.deepEqual(detectHandles('whatsapp janedoe', detectors), []);
    assert.equal(detectHandles('whatsapp: janedoe', detectors).length, 1);
    assert.equal(detectHandles('whatsapp jane_doe', detectors).length, 1);
    assert.deepEqual(detectHandles('whatsapp: business', detectors), []);
    assert.deepEqual(detectHandles('online: jane_doe', detectors), []); // "line" inside a word
  });

  it('lists keyword by keyword, each from the left, as Python does', () => {
    const found = detectHandles('wechat: bob_12345 微信 ann_12345 wechat carl_1234', detectors);
    assert.deepEqual(found.map((d) => d.start), [18, 0, 31]);
  });
});

describe('links and wallets', () => {
  it('finds messaging links and wallet addresses', () => {
    assert.deepEqual(detectLinks('go to t.me/veil_shop now').map((d) => [d.start, d.end]), [[6, 20]]);
    assert.equal(detectWallets('0x52908400098527886e0f7030069857d2e4169ee7').length, 1);
    assert.equal(detectWallets('13812345678901234567890123456').length, 0); // digits only: not an address
  });
});

describe('detectorText', () => {
  it('gives every astral character one index, as Python does', () => {
    const standIns = new AstralStandIns([['微信']]);
    const text = detectorText(['😀', '𠀀', '1'], standIns);
    assert.equal(text.length, 3);
    assert.equal(text[2], '1');
  });
});
