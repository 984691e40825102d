// The DCC part of the AttFC loss on backend torch: the same quantities as dccSoftmax.ts (read its
// header for the mathematics), computed where the DCC lives. Per chunk of c slots:
//   z = q K^T                     [B, c], one ATen matrix product (K a view of the DCC table)
//   z[i, j] = -inf                for the masked (same-label) pairs, found through the label index
//   fused row pass (addon)        m_i = clamp(max_j z_ij), sum_i = sum_j exp(s (clamp(z_ij) - m_i)),
//                                 z_ij <- that term where -1 <= z_ij <= 1, else 0
//   G = z K                       [B, D], the gradient's chunk part relative to the shift s m_i
// and the chunks combine in float64: A_i = log sum_k sum_ik e^{s m_ik}, dA/dq_i = s sum_k e^{s m_ik - A_i} G_k[i].
// Shifting by each row's own maximum keeps every term in (0, 1] for any s, so no single-pass bound applies.
import * as tf from '@tensorflow/tfjs-core';
import type { TorchBackend } from '../../engine/torch/backend.js';
import type { Scope } from '../../engine/torch/aten.js';
import type { DeviceClassContainer } from './deviceDcc.js';
import { maskPairsByChunk, type DccSoftmaxTimings } from './dccSoftmax.js';

export interface DeviceSoftmaxInput {
  /** Unit-norm queries [B, D] on backend torch. */
  queries: tf.Tensor2D;
  labels: Int32Array;
  scale: number;
  masking: boolean;
  needGradient: boolean;
}

export interface DeviceSoftmaxResult {
  /** A_i, [B]. */
  logSumExp: Float64Array;
  /** dA_i/dq_i, [B, D] on backend torch (the caller disposes it); null unless needGradient. */
  gradient: tf.Tensor2D | null;
  /** Largest unmasked clamped cosine per query (NaN when every slot is masked), [B]. */
  hardestNegative: Float32Array;
  maskedCount: number;
  timings: DccSoftmaxTimings;
}

export function deviceDccSoftmax(backend: TorchBackend, dcc: DeviceClassContainer, input: DeviceSoftmaxInput): DeviceSoftmaxResult {
  const { labels, scale: s, needGradient } = input;
  const B = labels.length;
  const aten = backend.aten;
  const timings: DccSoftmaxTimings = { uploadMs: 0, cosineMs: 0, jsMs: 0, gradientMs: 0 };
  const lap = (key: keyof DccSoftmaxTimings, since: number) => {
    const now = performance.now();
    timings[key] += now - since;
    return now;
  };
  const { byChunk, count: maskedCount } = maskPairsByChunk(dcc, labels, input.masking);
  const shifts: Float32Array[] = []; // s * clamp(m_ik) per chunk
  const sums: Float64Array[] = [];
  const hardest = new Float32Array(B).fill(-Infinity);

  return backend.scoped((sc) => {
    const q = backend.handle(input.queries);
    const negInf = sc.tmp(backend.upload(new Float32Array([-Infinity]), [], 'float32'));
    const parts: number[] = [];
    for (let k = 0; k < dcc.numChunks; k++) {
      let t = performance.now();
      const keys = sc.op('narrow', dcc.table.handle, 0, dcc.chunkStart(k), dcc.chunkLength(k));
      const pairs = byChunk[k];
      let maskIndex: number[] | null = null;
      if (pairs.length) {
        const rows = new Int32Array(pairs.length / 2);
        const cols = new Int32Array(pairs.length / 2);
        for (let p = 0; p < pairs.length; p += 2) {
          rows[p / 2] = pairs[p];
          cols[p / 2] = pairs[p + 1];
        }
        maskIndex = [rows, cols].map((a) => sc.op('to.dtype', sc.tmp(backend.upload(a, [a.length], 'int32')), 'int64'));
      }
      t = lap('uploadMs', t);
      const z = sc.op('mm', q, sc.op('t', keys));
      t = lap('cosineMs', t);
      if (maskIndex) sc.tmp(aten.t('index_put_', z, maskIndex, negInf, false));
      const row = rowPass(backend, sc, z, s);
      const rowMax = backend.native.toArray(row.rowMax) as Float32Array;
      sums.push(backend.native.toArray(row.rowSum) as Float64Array);
      const shift = new Float32Array(B);
      for (let i = 0; i < B; i++) {
        shift[i] = s * Math.min(1, Math.max(-1, rowMax[i]));
        if (rowMax[i] > hardest[i]) hardest[i] = rowMax[i];
      }
      shifts.push(shift);
      t = lap('jsMs', t);
      if (needGradient) parts.push(sc.op('mm', row.weights, keys));
      lap('gradientMs', t);
    }

    // A_i over all chunks, in float64 from the per-chunk shifted sums
    const logSumExp = new Float64Array(B);
    for (let i = 0; i < B; i++) {
      let top = -Infinity;
      for (const sh of shifts) top = Math.max(top, sh[i]);
      let total = 0;
      for (let k = 0; k < shifts.length; k++) total += sums[k][i] * Math.exp(shifts[k][i] - top);
      logSumExp[i] = top + Math.log(total);
    }
    let gradient: tf.Tensor2D | null = null;
    if (needGradient) {
      const t = performance.now();
      let acc: number | null = null;
      for (let k = 0; k < parts.length; k++) {
        const factor = new Float32Array(B);
        for (let i = 0; i < B; i++) factor[i] = s * Math.exp(shifts[k][i] - logSumExp[i]);
        const f = sc.tmp(backend.upload(factor, [B, 1], 'float32'));
        acc = acc === null ? sc.op('mul.Tensor', parts[k], f) : sc.op('addcmul', acc, parts[k], f);
      }
      gradient = tf.engine().makeTensorFromTensorInfo(backend.output(sc.keep(acc!), 'float32')) as tf.Tensor2D;
      lap('gradientMs', t);
    }
    for (let i = 0; i < B; i++) hardest[i] = hardest[i] === -Infinity ? NaN : Math.max(-1, Math.min(1, hardest[i]));
    return { logSumExp, gradient, hardestNegative: hardest, maskedCount, timings };
  });
}

/**
 * The row pass over a chunk's cosines z [B, c] (masked slots at -inf): the gradient weights
 * (exp(s (clamp(z) - m)) where -1 <= z <= 1, else 0), each row's raw maximum and its sum of terms in
 * float64. On the CPU the addon does it in one fused pass, in place; elsewhere (CUDA) it is composed of
 * ATen ops, which compute the same (a test checks the two against each other on the CPU).
 */
export function rowPass(backend: TorchBackend, sc: Scope, z: number, s: number, composed = backend.device !== 'cpu'): { weights: number; rowMax: number; rowSum: number } {
  if (!composed) {
    const [rowMax, rowSum] = backend.native.dccRows(z, s);
    return { weights: z, rowMax: sc.tmp(rowMax), rowSum: sc.tmp(rowSum) };
  }
  const rowMax = sc.op('amax', z, [1], true);
  const shift = sc.op('clamp', rowMax, -1, 1);
  const terms = sc.op('exp', sc.op('mul.Scalar', sc.op('sub.Tensor', sc.op('clamp', z, -1, 1), shift), s));
  const rowSum = sc.op('sum.dim_IntList', terms, [1], false, 'float64');
  const outside = sc.op('gt.Scalar', sc.op('abs', z), 1);
  const weights = sc.op('masked_fill.Scalar', terms, outside, 0);
  return { weights, rowMax: sc.op('squeeze.dim', rowMax, 1), rowSum };
}
