import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RECONNECT_INITIAL_MS, RECONNECT_MAX_MS, reconnectDelay } from '../../extension/background/backoff.js';

const noJitter = () => 0.5;

describe('reconnectDelay', () => {
  it('starts at one second and doubles', () => {
    const delays = [0, 1, 2, 3, 4, 5].map((attempt) => reconnectDelay(attempt, noJitter));
    assert.deepEqual(delays, [1000, 2000, 4000, 8000, 16000, 32000]);
  });

  it('never exceeds the cap, however many attempts', () => {
    for (const attempt of [6, 7, 20, 1000, Number.MAX_SAFE_INTEGER]) {
      assert.equal(reconnectDelay(attempt, noJitter), RECONNECT_MAX_MS);
      assert.equal(reconnectDelay(attempt, () => 1), RECONNECT_MAX_MS);
    }
  });

  it('spreads delays by up to a fifth either way', () => {
    assert.equal(reconnectDelay(3, () => 0), 6400);
    assert.equal(reconnectDelay(3, () => 1), 9600);
  });

  it('never goes below the initial delay', () => {
    assert.equal(reconnectDelay(0, () => 0), RECONNECT_INITIAL_MS);
  });

  it('treats nonsense attempts as the first', () => {
    for (const attempt of [-1, 1.5, NaN, undefined, '3']) {
      assert.equal(reconnectDelay(attempt, noJitter), RECONNECT_INITIAL_MS);
    }
  });
});
