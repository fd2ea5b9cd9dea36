import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { normaliseEnrolmentCode } from '../../extension/shared/enrolment_code.js';

describe('normaliseEnrolmentCode', () => {
  const accepted = [
    ['K7QF-3MZP', 'K7QF-3MZP'],
    ['k7qf-3mzp', 'K7QF-3MZP'],
    ['  K7QF 3MZP \n', 'K7QF-3MZP'],
    ['K7QF3MZP', 'K7QF-3MZP'],
    ['k 7 q f - 3 m z p', 'K7QF-3MZP'],
    ['K7QF\u20133MZP', 'K7QF-3MZP'],
    ['\uFF2B\uFF17\uFF31\uFF26\uFF0D\uFF13\uFF2D\uFF3A\uFF30', 'K7QF-3MZP'],
    ['K7QF\u30003MZP', 'K7QF-3MZP'],
  ];
  for (const [input, expected] of accepted) {
    it(`accepts ${JSON.stringify(input)}`, () => {
      assert.deepEqual(normaliseEnrolmentCode(input), { ok: true, code: expected });
    });
  }

  const refused = [
    ['', 'empty'],
    [' - ', 'empty'],
    [undefined, 'empty'],
    ['K7QF-3MZ', 'invalid'],
    ['K7QF-3MZPX', 'invalid'],
    ['K7QF_3MZP', 'invalid'],
    ['K7QF-3MZ!', 'invalid'],
    ['<b>K7QF</b>', 'invalid'],
  ];
  for (const [input, reason] of refused) {
    it(`refuses ${JSON.stringify(input)} as ${reason}`, () => {
      assert.deepEqual(normaliseEnrolmentCode(input), { ok: false, reason });
    });
  }
});
