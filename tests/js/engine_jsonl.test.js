import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  MAX_LINE_BYTES, PyDict, PyFloat, PyInt, firstInvalidUtf8, floatRepr, parseLine, pythonJson, pythonJsonLoads, readLines,
} from '../../extension/engine/jsonl.js';

const bytes = (text) => Buffer.from(text, 'utf8');
const errorOf = (line) => parseLine(typeof line === 'string' ? bytes(line) : line)[1];

describe('pythonJson', () => {
  it('writes as json.dumps(ensure_ascii=False) does', () => {
    assert.equal(pythonJson({ id: null, text: 'é\n"😀', spans: [] }), '{"id": null, "text": "é\\n\\"😀", "spans": []}');
    assert.equal(pythonJson([1, true, new PyInt('123456789012345678901234567890')]), '[1, true, 123456789012345678901234567890]');
    assert.equal(pythonJson(new PyDict([['b', 1], ['2', 2]])), '{"b": 1, "2": 2}');
    assert.equal(pythonJson('\x01\x7f'), '"\\u0001\x7f"');
  });

  it('writes floats as repr does', () => {
    const cases = [[1, '1.0'], [0.1, '0.1'], [1e16, '1e+16'], [1e15, '1000000000000000.0'], [0.0001, '0.0001'],
      [0.00001, '1e-05'], [-0, '-0.0'], [1.5e-7, '1.5e-07'], [123456789012345680000, '1.2345678901234568e+20'],
      [Infinity, 'Infinity'], [NaN, 'NaN']];
    for (const [value, text] of cases) assert.equal(floatRepr(value), text, String(value));
    assert.equal(pythonJson(new PyFloat(2)), '2.0');
  });
});

describe('pythonJsonLoads', () => {
  it('keeps integers exact and key order as written', () => {
    const row = pythonJsonLoads('{"z": 1, "a": 123456789012345678901234567890, "z": 2.50}');
    assert.deepEqual([...row.map.keys()], ['z', 'a']);
    assert.equal(row.get('a').digits, '123456789012345678901234567890');
    assert.equal(row.get('z').value, 2.5);
  });

  it('joins escaped surrogate pairs', () => {
    assert.equal(pythonJsonLoads('"\\ud83d\\ude00"'), '😀');
  });
});

describe('parseLine', () => {
  it('answers malformed lines with Python\'s messages', () => {
    assert.equal(errorOf('{'), 'not JSON: Expecting property name enclosed in double quotes at column 2');
    assert.equal(errorOf('{"text": "a",}'), 'not JSON: Expecting property name enclosed in double quotes at column 14');
    assert.equal(errorOf('{"text" 1}'), 'not JSON: Expecting \':\' delimiter at column 9');
    assert.equal(errorOf('[1 2]'), 'not JSON: Expecting \',\' delimiter at column 4');
    assert.equal(errorOf('{"text": "😀\\x"}'), 'not JSON: Invalid \\escape at column 12');
    assert.equal(errorOf('{"text": "a'), 'not JSON: Unterminated string starting at at column 10');
    assert.equal(errorOf('{"text": "a"} x'), 'not JSON: Extra data at column 15');
    assert.equal(errorOf('\ufeff{}'), 'not JSON: Unexpected UTF-8 BOM (decode using utf-8-sig) at column 1');
    assert.equal(errorOf('[1]'), 'each line must be a JSON object');
    assert.equal(errorOf('{"text": 1}'), '"text" must be a string');
    assert.equal(errorOf('{"text": "", "direction": "up"}'), '"direction" must be "in" or "out"');
    assert.equal(errorOf('{"text": "", "conversation": 1.5}'), '"conversation" must be a string or a number');
    assert.equal(errorOf('{"text": "", "conversation": true}'), null);
  });

  it('reports the first byte that is not UTF-8', () => {
    assert.equal(errorOf(Buffer.from([0x7b, 0xff])), 'not UTF-8 (byte 1)');
    assert.equal(firstInvalidUtf8(Buffer.from([0x61, 0xe4, 0xb8])), 1);
    assert.equal(firstInvalidUtf8(Buffer.from([0xed, 0xa0, 0x80])), 0); // a surrogate
    assert.equal(firstInvalidUtf8(Buffer.from([0xc0, 0x80])), 0); // overlong
    assert.equal(firstInvalidUtf8(bytes('私下😀')), -1);
  });
});

describe('readLines', () => {
  it('drops line ends and blank lines, and cuts over-long lines', () => {
    const long = 'a'.repeat(MAX_LINE_BYTES + 5);
    const lines = [...readLines(bytes(`one\r\n \x0b\n${long}\ntwo`))].map((line) => line.toString());
    assert.deepEqual(lines.map((line) => line.length), [3, MAX_LINE_BYTES + 1, 3]);
    assert.equal(errorOf(bytes(lines[1])), `line longer than ${MAX_LINE_BYTES} bytes`);
  });
});
