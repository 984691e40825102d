// Batch norms rebuilt from a folded bias (gamma 1, beta = bias, mean 0, var 1 - eps, as the ONNX import
// writes them) compute x + bias at inference, but in training mode they normalise by the batch
// statistics, a different function: fine-tuning such a model would start by wrecking it, and the running
// statistics would drift towards the batch ones. Re-estimating them on real inputs (mean m, var v) with
// gamma = sqrt(v + eps) and beta = bias + m keeps the inference function exactly, and makes the
// training-mode function the same up to the batch-to-batch spread.
import * as tf from '@tensorflow/tfjs-core';
import { BN_EPSILON, GraphBackbone } from './graphBackbone.js';
import type { Backbone } from './types.js';

const UNIT_VAR = Math.fround(1 - BN_EPSILON);

function isUnfolded(gamma: Float32Array, mean: Float32Array, variance: Float32Array): boolean {
  return gamma.every((v) => v === 1) && mean.every((v) => v === 0) && variance.every((v) => v === UNIT_VAR);
}

/**
 * Re-estimates the statistics of every unfolded batch norm of `b` on `images` (n NHWC images normalised
 * like the training input), `chunk` images per forward pass. Returns how many norms changed.
 */
export function recalibrateUnfoldedNorms(b: Backbone, images: Float32Array, n: number, chunk = 16): number {
  if (!(b instanceof GraphBackbone)) throw new Error('recalibrateUnfoldedNorms: needs a backbone made by createBackbone');
  const vars = new Map(b.variables().map((v) => [v.name, v.variable]));
  const value = (name: string) => vars.get(name)?.dataSync() as Float32Array;
  const targets = [...vars.keys()]
    .filter((k) => k.endsWith('.running_mean'))
    .map((k) => k.slice(0, -'.running_mean'.length))
    .filter((bn) => isUnfolded(value(`${bn}.weight`), value(`${bn}.running_mean`), value(`${bn}.running_var`)));
  if (targets.length === 0 || n === 0) return 0;
  const size = b.options.inputSize;
  const per = size * size * 3;
  // Chunked sums of E[x] and E[x^2] per channel, weighted by the chunk's share of the images.
  const sums = new Map<string, { mean: Float64Array; square: Float64Array }>();
  for (let start = 0; start < n; start += chunk) {
    const count = Math.min(chunk, n - start);
    const x = tf.tensor4d(images.subarray(start * per, (start + count) * per), [count, size, size, 3]);
    const moments = b.normInputMoments(x);
    x.dispose();
    for (const bn of targets) {
      const m = moments.get(bn);
      if (!m) continue;
      const acc = sums.get(bn) ?? { mean: new Float64Array(m.mean.length), square: new Float64Array(m.mean.length) };
      for (let c = 0; c < m.mean.length; c++) {
        acc.mean[c] += (m.mean[c] * count) / n;
        acc.square[c] += ((m.variance[c] + m.mean[c] * m.mean[c]) * count) / n;
      }
      sums.set(bn, acc);
    }
  }
  for (const bn of targets) {
    const acc = sums.get(bn);
    if (!acc) continue;
    const beta = value(`${bn}.bias`);
    const variance = acc.square.map((s, c) => Math.max(0, s - acc.mean[c] * acc.mean[c]));
    const set = (name: string, v: ArrayLike<number>) => {
      const variable = vars.get(`${bn}.${name}`) as tf.Variable;
      tf.tidy(() => variable.assign(tf.tensor(Float32Array.from(v), variable.shape)));
    };
    set('weight', variance.map((v) => Math.sqrt(v + BN_EPSILON)));
    set('bias', Array.from(beta, (v, c) => v + acc.mean[c]));
    set('running_mean', acc.mean);
    set('running_var', variance);
  }
  return targets.length;
}
