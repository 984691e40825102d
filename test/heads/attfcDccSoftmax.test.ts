// The DCC softmax at the edge of float32: the single-pass sums keep exp(s * z) unshifted, and the
// gradient product P.K adds up to chunk-length of them in float32 on the device, so whether one pass is
// safe depends on s and the chunk length together, not on s alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setupEngine } from '../helpers/engine.js';
import { DynamicClassContainer } from '../../src/heads/attfc/index.js';
import { DccDeviceChunks } from '../../src/heads/attfc/deviceChunks.js';
import { dccSoftmax, singlePassFits } from '../../src/heads/attfc/dccSoftmax.js';

await setupEngine();

/** A DCC of `slots` copies of e_0 and one query e_0 of another identity: every logit is exactly s. */
function collapsed(slots: number, dim: number): DynamicClassContainer {
  const dcc = new DynamicClassContainer({ size: slots, dim, chunkSlots: slots, seed: 1 });
  const vectors = new Float32Array(slots * dim);
  for (let j = 0; j < slots; j++) vectors[j * dim] = 1;
  dcc.enqueue(vectors, Int32Array.from({ length: slots }, (_, j) => j + 1));
  return dcc;
}

test('s = 80 with 8192-slot chunks (8192 e^80 > float32 max): finite log-sum-exp and gradient, packed and streamed', () => {
  const slots = 8192;
  const dim = 4;
  const s = 80;
  for (const budget of [1 << 30, 0]) {
    const dcc = collapsed(slots, dim);
    const device = new DccDeviceChunks(dcc, budget);
    const query = new Float32Array(dim);
    query[0] = 1;
    const r = dccSoftmax(dcc, device, { queries: query, labels: new Int32Array([0]), scale: s, masking: true, needGradient: true, hotChunks: new Set() });
    device.dispose();
    assert.ok(Math.abs(r.logSumExp[0] - (s + Math.log(slots))) < 1e-6, `A = ${r.logSumExp[0]}`);
    // dA/dq = s * sum_j p_j Q_j = s e_0: every slot has the same weight 1/S
    assert.deepEqual(Array.from(r.gradient!, (g) => Math.round(g * 1e4) / 1e4), [s, 0, 0, 0], `budget ${budget}`);
  }
});

test('the single pass is taken exactly while chunk length x e^s stays inside float32', () => {
  assert.equal(singlePassFits(64, 4096), true);
  assert.equal(singlePassFits(80, 4096), true);
  assert.equal(singlePassFits(80, 8192), false);
  assert.equal(singlePassFits(88, 1), true);
  assert.equal(singlePassFits(89, 1), false);
  // at the bound itself the worst case (every weight e^s on one dimension) still fits
  for (const c of [1, 100, 4096, 65536]) {
    let s = 1;
    while (singlePassFits(s + 0.01, c)) s += 0.01;
    assert.ok(Number.isFinite(Math.fround(c * Math.fround(Math.exp(s)))), `c = ${c}, s = ${s}`);
  }
});
