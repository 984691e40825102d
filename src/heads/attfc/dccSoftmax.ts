// The DCC part of the AttFC loss, chunk by chunk, so the B x S logits never exist at once.
//
// For unit queries q_i and DCC centres Q_j (z_ij = q_i . Q_j):
//   zhat_ij = -1 if slot j has sample i's label (masking), else clamp(z_ij, -1, 1)
//   A_i     = log sum_j exp(s * zhat_ij)
//   dA_i/dq_i = s * sum_j p_ij [unmasked, -1 <= z_ij <= 1] Q_j,   p_ij = exp(s * zhat_ij - A_i)
// (the reference sets masked logits to -1e9 and clamps them to -1: a constant, hence no gradient; the
// clamp passes gradient on [-1, 1] like torch.clamp). The caller combines A_i with the positive
// column: loss_i = logaddexp(t_i, A_i) - t_i.
//
// One pass over the DCC gives both A and dA/dq, so the backward pass needs no second sweep. Unshifted,
// the gradient weights exp(s * zhat) lie in [e^-s, e^s] and go to the device as float32, where P.K sums
// up to c of them (times unit-vector components) per output in float32: one JS pass over each chunk's
// cosines is safe while c * e^s stays inside float32 (singlePassFits; the JS sums are float64). Larger
// scales or chunks use an online softmax: a per-chunk maximum pass, with the partial sums and gradient
// rescaled when the running maximum grows, so every weight is at most 1.
// Per chunk: the cosines [c, B] come from a matmul on the device; masking, clamping, exp and the
// sums run in JS; the gradient weights go back for a second matmul:
//   packed chunk: P [B, c] . K [c, D]      (K's packed copy is cached with the resident tensor)
//   other chunks: K^T [D, c] . P^T [c, B]  (only the small P^T is packed)
import * as tf from '@tensorflow/tfjs-core';
import type { DynamicClassContainer } from './dcc.js';
import type { DccDeviceChunks } from './deviceChunks.js';
import { MAX_EXP_SCALE, ScaledExp } from './fastExp.js';

export interface DccSoftmaxInput {
  /** Unit-norm queries, [B, D] row-major. */
  queries: Float32Array;
  /** Identity of each query; slots with the same label are masked when `masking`. */
  labels: Int32Array;
  /** Logit scale s. */
  scale: number;
  masking: boolean;
  /** Also accumulate dA/dq (a second matmul per chunk). */
  needGradient: boolean;
  /** Chunks the coming enqueue overwrites (see DccDeviceChunks.acquire). */
  hotChunks: ReadonlySet<number>;
}

export interface DccSoftmaxResult {
  /** A_i = log sum_j exp(s * zhat_ij), [B]. */
  logSumExp: Float64Array;
  /** dA_i/dq_i, [B, D] row-major; null unless needGradient. */
  gradient: Float32Array | null;
  /** Largest unmasked clamped cosine per query (NaN when every slot is masked), [B]. */
  hardestNegative: Float32Array;
  /** Number of masked (query, slot) pairs. */
  maskedCount: number;
  /** Wall time by phase: chunk uploads, cosine products, the JS passes, gradient products. */
  timings: DccSoftmaxTimings;
}

export interface DccSoftmaxTimings {
  uploadMs: number;
  cosineMs: number;
  jsMs: number;
  gradientMs: number;
}

const MASKED = -Infinity;
/** ln of float32's largest finite value (3.4e38). */
const LOG_FLOAT32_MAX = Math.log(3.4028234663852886e38);
/** Head room below it for the rounding of the weights and of the device's float32 accumulation. */
const SINGLE_PASS_MARGIN = 0.1;

/**
 * Whether the unshifted single pass is safe for logit scale s and chunks of `chunkLength` slots: the
 * worst case (every cosine 1, every centre on one axis) sums chunkLength weights e^s into one float32.
 */
export function singlePassFits(s: number, chunkLength: number): boolean {
  return s + Math.log(chunkLength) <= LOG_FLOAT32_MAX - SINGLE_PASS_MARGIN;
}
/** Slots per block of the P [B, c] pass (B x 16 floats of z stay in L1). */
const SLOT_BLOCK = 16;

/** Adds the time since `since` to timings[key]; returns now. */
function lap(timings: DccSoftmaxTimings, key: keyof DccSoftmaxTimings, since: number): number {
  const now = performance.now();
  timings[key] += now - since;
  return now;
}

/** What masking needs of a DCC: its chunking and its label -> slots index (both containers have them). */
export interface ChunkedLabelIndex {
  readonly numChunks: number;
  chunkOf(slot: number): number;
  chunkStart(k: number): number;
  forEachSlotWithLabel(label: number, fn: (slot: number) => void): void;
}

/** Same-label (query, slot) pairs grouped by chunk: flat [query, slotInChunk, ...] lists. */
export function maskPairsByChunk(dcc: ChunkedLabelIndex, labels: Int32Array, masking: boolean): { byChunk: number[][]; count: number } {
  const byChunk: number[][] = Array.from({ length: dcc.numChunks }, () => []);
  let count = 0;
  if (!masking) return { byChunk, count };
  for (let i = 0; i < labels.length; i++) {
    dcc.forEachSlotWithLabel(labels[i], (slot) => {
      const k = dcc.chunkOf(slot);
      byChunk[k].push(i, slot - dcc.chunkStart(k));
      count++;
    });
  }
  return { byChunk, count };
}

/** A, dA/dq and diagnostics of the DCC logits of one batch. */
export function dccSoftmax(dcc: DynamicClassContainer, device: DccDeviceChunks, input: DccSoftmaxInput): DccSoftmaxResult {
  const { queries, labels, scale: s, needGradient } = input;
  const B = labels.length;
  const D = dcc.dim;
  if (queries.length !== B * D) throw new Error(`dccSoftmax: ${queries.length} query values for ${B} labels of dimension ${D}`);

  const runMax = new Float64Array(B).fill(-Infinity); // running max of s * zhat
  const sum = new Float64Array(B); // sum exp(s * zhat - runMax)
  const acc = needGradient ? new Float64Array(B * D) : null; // sum w * Q_j, same scale as sum
  const hardest = new Float32Array(B).fill(-Infinity);
  const chunkMax = new Float32Array(B);
  const { byChunk, count: maskedCount } = maskPairsByChunk(dcc, labels, input.masking);
  if (!(s > 0 && s <= MAX_EXP_SCALE)) throw new Error(`dccSoftmax: logit scale ${s} is outside (0, ${MAX_EXP_SCALE}]`);
  const expScaled = new ScaledExp(s); // exp(s * z) for clamped z
  const expNegMax = new Float64Array(B); // exp(-runMax)
  const fixedShift = singlePassFits(s, dcc.chunkSlots);
  if (fixedShift) {
    runMax.fill(0);
    expNegMax.fill(1);
  }

  // q^T [D, B], the packed right operand of K q^T (small)
  const qt = new Float32Array(D * B);
  for (let i = 0; i < B; i++) for (let d = 0; d < D; d++) qt[d * B + i] = queries[i * D + d];
  const qT = tf.tensor2d(qt, [D, B]);
  const weights = new Float32Array(B * dcc.chunkSlots);
  const timings: DccSoftmaxTimings = { uploadMs: 0, cosineMs: 0, jsMs: 0, gradientMs: 0 };

  for (let k = 0; k < dcc.numChunks; k++) {
    const c = dcc.chunkLength(k);
    let t = performance.now();
    const chunk = device.acquire(k, input.hotChunks.has(k));
    t = lap(timings, 'uploadMs', t);
    const cosT = tf.matMul(chunk.slotMajor, qT); // [c, B]
    const z = cosT.dataSync() as Float32Array; // a copy on wasm; the tensor's own array on cpu (disposed below)
    t = lap(timings, 'cosineMs', t);
    const pairs = byChunk[k];
    for (let p = 0; p < pairs.length; p += 2) z[pairs[p + 1] * B + pairs[p]] = MASKED;

    // per-query maximum of this chunk (masked = -inf, so it is also the hardest negative): its own pass
    // only for the online softmax; the single pass below tracks it otherwise
    chunkMax.fill(-Infinity);
    if (!fixedShift) {
      for (let j = 0; j < c; j++) {
        const row = j * B;
        for (let i = 0; i < B; i++) if (z[row + i] > chunkMax[i]) chunkMax[i] = z[row + i];
      }
      for (let i = 0; i < B; i++) {
        const zc = chunkMax[i] > 1 ? 1 : chunkMax[i] < -1 ? -1 : chunkMax[i]; // -inf (all masked) -> -1
        const m = s * zc;
        if (m > runMax[i]) {
          const f = Math.exp(runMax[i] - m); // 0 on the first chunk
          sum[i] *= f;
          if (acc) for (let d = i * D; d < (i + 1) * D; d++) acc[d] *= f;
          runMax[i] = m;
        }
        expNegMax[i] = Math.exp(-runMax[i]);
      }
    }

    // pass 2: exp, sums and gradient weights (zero where masked or clamped), laid out for this
    // chunk's product: P [B, c] for a packed chunk (in blocks of slots, so that the strided reads
    // and the row writes both stay in cache), P^T [c, B] (the layout of z) for the others
    if (chunk.packed) {
      for (let j0 = 0; j0 < c; j0 += SLOT_BLOCK) {
        const j1 = Math.min(c, j0 + SLOT_BLOCK);
        for (let i = 0; i < B; i++) {
          const em = expNegMax[i];
          const out = i * c;
          let si = 0;
          let mi = chunkMax[i];
          for (let j = j0; j < j1; j++) {
            const zi = z[j * B + i];
            if (zi > mi) mi = zi;
            const zc = Math.min(1, Math.max(-1, zi));
            const w = expScaled.at(zc) * em;
            si += w;
            weights[out + j] = zc === zi ? w : 0;
          }
          sum[i] += si;
          chunkMax[i] = mi;
        }
      }
    } else {
      for (let j = 0; j < c; j++) {
        const row = j * B;
        for (let i = 0; i < B; i++) {
          const zi = z[row + i];
          if (zi > chunkMax[i]) chunkMax[i] = zi;
          const zc = Math.min(1, Math.max(-1, zi));
          const w = expScaled.at(zc) * expNegMax[i];
          sum[i] += w;
          weights[row + i] = zc === zi ? w : 0;
        }
      }
    }
    cosT.dispose();
    for (let i = 0; i < B; i++) if (chunkMax[i] > hardest[i]) hardest[i] = Math.max(-1, Math.min(1, chunkMax[i]));
    t = lap(timings, 'jsMs', t);

    if (acc) {
      let part: tf.Tensor2D;
      if (chunk.packed) {
        const p = tf.tensor2d(weights.subarray(0, B * c), [B, c]);
        part = tf.matMul(p, chunk.slotMajor); // [B, D]
        p.dispose();
      } else {
        const pT = tf.tensor2d(weights.subarray(0, c * B), [c, B]);
        part = tf.matMul(chunk.dimMajor(), pT); // [D, B]
        pT.dispose();
      }
      const g = part.dataSync();
      part.dispose();
      if (chunk.packed) for (let x = 0; x < B * D; x++) acc[x] += g[x];
      else for (let i = 0; i < B; i++) for (let d = 0; d < D; d++) acc[i * D + d] += g[d * B + i];
      t = lap(timings, 'gradientMs', t);
    }
    chunk.release();
  }
  qT.dispose();

  const logSumExp = new Float64Array(B);
  for (let i = 0; i < B; i++) logSumExp[i] = runMax[i] + Math.log(sum[i]);
  let gradient: Float32Array | null = null;
  if (acc) {
    gradient = new Float32Array(B * D);
    for (let i = 0; i < B; i++) {
      const f = s / sum[i];
      for (let d = 0; d < D; d++) gradient[i * D + d] = acc[i * D + d] * f;
    }
  }
  for (let i = 0; i < B; i++) if (hardest[i] === -Infinity) hardest[i] = NaN;
  return { logSumExp, gradient, hardestNegative: hardest, maskedCount, timings };
}
