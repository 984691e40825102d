// The softmax cross-entropy of a head whose logits are split across the ranks (--shard-head): every
// rank sees the whole global batch's embeddings (gathered, with a gradient) and the logits of its own
// classes or DCC slots; the ranks' parts meet in small allreduces over the batch's rows.
//
// For row i of the global batch (B rows), rank r holds a_ri = log sum_{its logits} exp(z), and one rank
// holds the target logit t_i. Then
//   Z_i = log sum_r exp(a_ri) = M_i + log sum_r exp(a_ri - M_i),   M_i = max_r a_ri,
//   l_i = Z_i - t_i,   L = (1/B) sum_i l_i   (one process's batch mean),
// and, differentiating L with the other ranks' parts held constant,
//   dL/da_ri = exp(a_ri - Z_i) / B,   dL/dt_i = -1/B on the rank that holds t_i, 0 elsewhere.
// Backward through a_ri and t_i gives this rank's shard gradients exactly (only its logits touch its
// shard) and its part of the gradient of the gathered embeddings; gatherBatch's backward sums those
// parts over the ranks. The loss VALUE a rank returns is its own rows' share of L (the collectives
// contract: the trainer adds the ranks' values), computed in float64 from the reduced parts.
// Every rank must call these in the same order (they are collectives); nothing here touches a shard.
import * as tf from '@tensorflow/tfjs-core';
import type { HeadCollectives } from '../collectives.js';
import { cosineToCentres, marginLogits, targetOneHot, type MarginOptions } from '../margin.js';

/**
 * The global batch's rows of `local` (this rank's rows, every rank's in rank order) with a gradient:
 * backward sums the whole batch's gradient over the ranks (each rank's loss reaches every row through its
 * shard) and keeps this rank's rows.
 */
export function gatherBatch(c: HeadCollectives, local: tf.Tensor2D): tf.Tensor2D {
  const [start, end] = c.rows;
  const gather = tf.customGrad((x) => ({
    value: c.allGatherTensor(x as tf.Tensor2D) as tf.Tensor2D,
    gradFunc: (dy: tf.Tensor | tf.Tensor[]) =>
      tf.tidy(() => {
        const summed = c.allReduceTensor(dy as tf.Tensor, 'sum');
        return tf.slice(summed, [start, 0], [end - start, -1]);
      }),
  })) as unknown as (x: tf.Tensor2D) => tf.Tensor2D;
  return gather(local);
}

export interface ShardedRows {
  /** a_ri for every row of the global batch, [B] (differentiable; -Infinity where this rank has no logits). */
  partial: tf.Tensor1D;
  /** The target logit of the rows whose target this rank holds, 0 elsewhere, [B] (differentiable). */
  target: tf.Tensor1D;
  /** 1 for the rows whose target this rank holds. */
  holdsTarget: Uint8Array;
  /** Values to reduce by max over the ranks in the same message (diagnostics). */
  max?: Float64Array[];
  /** Values to sum over the ranks in the same message (diagnostics). */
  sum?: Float64Array[];
}

export interface ShardedLoss {
  /** This rank's rows' share of the batch mean; its gradient is this rank's part of the batch mean's. */
  loss: tf.Scalar;
  /** The batch mean loss (the same on every rank). */
  batchLoss: number;
  /** `max` and `sum` reduced over the ranks. */
  max: Float64Array[];
  sum: Float64Array[];
}

/** The cross-entropy of rows split across the ranks (see the file comment). Call inside the loss's tidy. */
export function shardedCrossEntropy(c: HeadCollectives, rows: ShardedRows): ShardedLoss {
  const B = c.batchSize;
  const partial = Float64Array.from(rows.partial.dataSync());
  const target = rows.target.dataSync();
  const extraMax = rows.max ?? [];
  const extraSum = rows.sum ?? [];
  if (partial.length !== B) throw new Error(`sharded softmax: ${partial.length} rows, expected the global batch of ${B}`);
  // message 1: the row maxima (and diagnostics reduced by max)
  const maxOut = c.allReduce(concat([partial, ...extraMax]), 'max');
  // message 2: the shifted sums and the target logits (and diagnostics summed)
  const shifted = new Float64Array(B);
  const held = new Float64Array(B);
  for (let i = 0; i < B; i++) {
    shifted[i] = Math.exp(partial[i] - maxOut[i]);
    held[i] = rows.holdsTarget[i] ? target[i] : 0;
  }
  const sumOut = c.allReduce(concat([shifted, held, ...extraSum]), 'sum');

  const logPartition = new Float64Array(B);
  let batchLoss = 0;
  let share = 0;
  const [start, end] = c.rows;
  for (let i = 0; i < B; i++) {
    logPartition[i] = maxOut[i] + Math.log(sumOut[i]);
    const l = logPartition[i] - sumOut[B + i];
    batchLoss += l;
    if (i >= start && i < end) share += l;
  }
  const dPartial = new Float32Array(B);
  const dTarget = new Float32Array(B);
  for (let i = 0; i < B; i++) {
    dPartial[i] = Math.exp(partial[i] - logPartition[i]) / B;
    dTarget[i] = rows.holdsTarget[i] ? -1 / B : 0;
  }
  const combine = tf.customGrad((_a, _t) => ({
    value: tf.scalar(share / B),
    gradFunc: (dy: tf.Tensor | tf.Tensor[]) => [tf.mul(dy as tf.Tensor, tf.tensor1d(dPartial)), tf.mul(dy as tf.Tensor, tf.tensor1d(dTarget))],
  })) as unknown as (a: tf.Tensor1D, t: tf.Tensor1D) => tf.Scalar;
  return {
    loss: combine(rows.partial, rows.target),
    batchLoss: batchLoss / B,
    max: split(maxOut, B, extraMax),
    sum: split(sumOut, 2 * B, extraSum),
  };
}

function concat(parts: Float64Array[]): Float64Array {
  const out = new Float64Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** The pieces of `v` after its first `skip` values, shaped like `like`. */
function split(v: Float64Array, skip: number, like: Float64Array[]): Float64Array[] {
  let at = skip;
  return like.map((p) => v.slice(at, (at += p.length)));
}

/**
 * FC and Partial FC over a shard of class centres: the margin softmax of the gathered batch `embeddings`
 * [B, D] against this rank's `centres` [k, D] (null: it holds none this step), `target[i]` the column
 * of row i's class among them or -1. Returns the loss and the batch's positiveCos (mean cosine to the
 * own centre) and hardestNegCos (mean of each row's largest other cosine), the same on every rank.
 */
export function shardedMarginSoftmax(
  c: HeadCollectives,
  embeddings: tf.Tensor2D,
  centres: tf.Tensor2D | null,
  target: Int32Array,
  margin: MarginOptions,
): { loss: tf.Scalar; diagnostics: Record<string, number> } {
  const B = target.length;
  const holdsTarget = Uint8Array.from(target, (t) => (t >= 0 ? 1 : 0));
  let partial: tf.Tensor1D;
  let targetLogit: tf.Tensor1D;
  const positive = new Float64Array(B);
  const hardest = new Float64Array(B).fill(-Infinity);
  if (centres) {
    const cos = cosineToCentres(embeddings, centres);
    const t = tf.tensor1d(target, 'int32');
    const logits = marginLogits(cos, t, margin);
    const hits = targetOneHot(t, centres.shape[0]);
    partial = tf.logSumExp(logits, 1) as tf.Tensor1D;
    targetLogit = tf.sum(tf.mul(logits, hits), 1) as tf.Tensor1D;
    // diagnostics per row as cosineStats defines them; the other ranks' columns come in the reduction (a
    // rank holding only the target column offers cos - 4, below any real negative)
    const stats = tf.stack([tf.sum(tf.mul(cos, hits), 1), tf.max(tf.sub(cos, tf.mul(hits, 4)), 1)], 1).dataSync();
    for (let i = 0; i < B; i++) {
      positive[i] = stats[2 * i];
      hardest[i] = stats[2 * i + 1];
    }
  } else {
    // no local logits: -inf parts that still depend on the embeddings, so backward reaches gatherBatch on this rank too
    partial = tf.add(tf.mul(tf.sum(embeddings, 1), 0), -Infinity) as tf.Tensor1D;
    targetLogit = tf.zeros([B]);
  }
  const r = shardedCrossEntropy(c, { partial, target: targetLogit, holdsTarget, max: [hardest], sum: [positive] });
  const mean = (v: Float64Array) => v.reduce((a, x) => a + x, 0) / B;
  const diagnostics: Record<string, number> = { positiveCos: mean(r.sum[0]) };
  const hardestNegCos = mean(r.max[0]);
  if (Number.isFinite(hardestNegCos)) diagnostics.hardestNegCos = hardestNegCos;
  return { loss: r.loss, diagnostics };
}
