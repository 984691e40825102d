// Attention loader: weights, GCCs, modes, temperature, quality statistics (pure JS, no engine).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { attentionStats, attentionWeights, generateClassCentres } from '../../src/heads/attfc/index.js';

const close = (a: number, b: number, tol = 1e-6) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);
const opts = { mode: 'softmax' as const, temperature: 1 };

test('softmax weights sum to 1 per sample and give an outlier key the smallest weight', () => {
  // one query e1, four keys: three near e1, one pointing away (a blurred/occluded image)
  const q = new Float32Array([1, 0, 0]);
  const keys = new Float32Array([0.9, 0.1, 0, 1, -0.1, 0.05, 0.95, 0, 0.1, -0.6, 0.8, 0]);
  const { weights, cosines } = generateClassCentres(q, keys, 4, 3, opts);
  close(weights.reduce((p, x) => p + x, 0), 1);
  const outlier = weights[3];
  for (let j = 0; j < 3; j++) assert.ok(weights[j] > outlier, `key ${j}: ${weights[j]} should exceed the outlier's ${outlier}`);
  close(cosines[3], -0.6);
  // several samples: every row sums to 1
  const w = attentionWeights(new Float32Array([0.1, 0.5, -0.2, 0.9, 0.3, 0.3]), 3, opts);
  close(w[0] + w[1] + w[2], 1);
  close(w[3] + w[4] + w[5], 1);
});

test('the GCC is the normalised attention-weighted sum of the RAW keys (hand computation)', () => {
  const q = new Float32Array([3, 4]); // |q| = 5
  const keys = new Float32Array([2, 0, 0, 1]); // raw norms 2 and 1
  // cosines: 3/5 = 0.6 and 4/5 = 0.8; a = softmax(0.6, 0.8)
  const a0 = Math.exp(0.6) / (Math.exp(0.6) + Math.exp(0.8));
  const a1 = 1 - a0;
  const v = [a0 * 2, a1 * 1]; // raw keys, not normalised ones
  const n = Math.hypot(v[0], v[1]);
  const { centres, weights } = generateClassCentres(q, keys, 2, 2, opts);
  close(weights[0], a0);
  close(weights[1], a1);
  close(centres[0], v[0] / n);
  close(centres[1], v[1] / n);
  close(Math.hypot(centres[0], centres[1]), 1);
});

test("'mean' weighs keys uniformly and 'single' keeps only the first key", () => {
  const q = new Float32Array([1, 0]);
  const keys = new Float32Array([1, 0, 0, 3, -1, 1]);
  const mean = generateClassCentres(q, keys, 3, 2, { mode: 'mean', temperature: 1 });
  for (const w of mean.weights) close(w, 1 / 3);
  const n = Math.hypot(0, 4);
  close(mean.centres[0], 0 / n);
  close(mean.centres[1], 4 / n);
  const single = generateClassCentres(q, keys, 3, 2, { mode: 'single', temperature: 1 });
  assert.deepEqual(Array.from(single.weights), [1, 0, 0]);
  assert.deepEqual(Array.from(single.centres), [1, 0]);
});

test('temperature: softmax(cos / T); small T sharpens, large T flattens', () => {
  const cos = new Float32Array([0.9, 0.5, 0.1]);
  for (const T of [0.1, 1, 10]) {
    const w = attentionWeights(cos, 3, { mode: 'softmax', temperature: T });
    const e = Array.from(cos, (c) => Math.exp(c / T));
    const tot = e.reduce((p, x) => p + x, 0);
    e.forEach((x, j) => close(w[j], x / tot, 1e-6));
  }
  const sharp = attentionWeights(cos, 3, { mode: 'softmax', temperature: 0.05 });
  const flat = attentionWeights(cos, 3, { mode: 'softmax', temperature: 100 });
  assert.ok(sharp[0] > 0.99);
  assert.ok(Math.abs(flat[0] - 1 / 3) < 0.01);
  assert.throws(() => attentionWeights(cos, 3, { mode: 'softmax', temperature: 0 }), /temperature/);
});

test('attention statistics: max, entropy and the weight given to low- vs high-quality keys', () => {
  const w = new Float32Array([0.8, 0.2, 0.5, 0.5]);
  const s = attentionStats(w, 2, new Float32Array([0.9, 0.1, 0.2, 0.7]));
  close(s.attentionMax, (0.8 + 0.5) / 2);
  close(s.attentionEntropy, (-(0.8 * Math.log(0.8) + 0.2 * Math.log(0.2)) + Math.log(2)) / 2);
  close(s.attentionLowQuality!, (0.2 + 0.5) / 2);
  close(s.attentionHighQuality!, (0.8 + 0.5) / 2);
  assert.equal(attentionStats(w, 2).attentionLowQuality, undefined);
});
