// The table-based exp(s * z) used by the chunked DCC softmax (pure JS).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ScaledExp } from '../../src/heads/attfc/fastExp.js';
import { Rng } from '../../src/util/rng.js';

test('ScaledExp matches Math.exp(s * z) to 1e-7 relative on [-1, 1] for small and large scales', () => {
  const rng = new Rng(1);
  for (const s of [0.5, 16, 64, 300]) {
    const e = new ScaledExp(s);
    let worst = 0;
    for (let i = 0; i < 100000; i++) {
      const z = i === 0 ? -1 : i === 1 ? 1 : 2 * rng.next() - 1;
      worst = Math.max(worst, Math.abs(e.at(z) / Math.exp(s * z) - 1));
    }
    assert.ok(worst < 1e-7, `s ${s}: worst relative error ${worst}`);
  }
  assert.ok(Number.isNaN(new ScaledExp(64).at(NaN)));
  assert.throws(() => new ScaledExp(0), /scale must be in/);
  assert.throws(() => new ScaledExp(1000), /scale must be in/);
});
