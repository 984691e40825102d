// The fast exp used by the chunked DCC softmax (pure JS).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { expNonPositive } from '../../src/heads/attfc/fastExp.js';
import { Rng } from '../../src/util/rng.js';

test('expNonPositive matches Math.exp to 1e-8 relative on [-700, 0], and its edge cases', () => {
  const rng = new Rng(1);
  let worst = 0;
  for (let i = 0; i < 200000; i++) {
    const x = i % 2 ? -700 * rng.next() : -10 * rng.next();
    worst = Math.max(worst, Math.abs(expNonPositive(x) / Math.exp(x) - 1));
  }
  assert.ok(worst < 1e-8, `worst relative error ${worst}`);
  assert.ok(Math.abs(expNonPositive(0) - 1) < 1e-8);
  assert.ok(Math.abs(expNonPositive(-Math.LN2) - 0.5) < 1e-8);
  assert.equal(expNonPositive(-Infinity), 0);
  assert.equal(expNonPositive(-800), 0);
  assert.equal(expNonPositive(2), Math.exp(2));
  assert.ok(Number.isNaN(expNonPositive(NaN)));
});
