// Test helpers for the AttFC head: a tiny backbone implementing the Backbone interface, seeded data,
// and an independent plain-loop float64 implementation of the AttFC loss and its gradient (no tf).
import * as tf from '@tensorflow/tfjs-core';
import type { Backbone, NamedVariable, ResolvedBackboneOptions } from '../../src/backbones/types.js';
import { AttFcHead } from '../../src/heads/attfc/index.js';
import type { MarginOptions } from '../../src/heads/margin.js';
import { Rng } from '../../src/util/rng.js';

/**
 * x [N, h, w, c] -> flatten -> dense [in, D] -> batch-norm-like centring with a running mean buffer
 * (training: batch mean, running <- 0.9 running + 0.1 batch mean) -> times a frozen scale.
 */
export class TinyBackbone implements Backbone {
  readonly name = 'tiny';
  readonly options: ResolvedBackboneOptions;
  readonly weight: tf.Variable;
  readonly scale: tf.Variable;
  readonly runningMean: tf.Variable;

  constructor(
    readonly inputDim: number,
    embeddingSize: number,
    seed: number,
  ) {
    this.options = { inputSize: 1, widthMultiplier: 1, embeddingSize, dropout: 0, seed };
    const rng = new Rng(seed);
    const w = new Float32Array(inputDim * embeddingSize).map(() => rng.normal() * 0.5);
    this.weight = tf.variable(tf.tensor2d(w, [inputDim, embeddingSize]));
    this.scale = tf.variable(tf.tensor1d(new Float32Array(embeddingSize).map(() => 1 + rng.uniform(-0.2, 0.2))));
    this.runningMean = tf.variable(tf.zeros([embeddingSize]));
  }

  variables(): NamedVariable[] {
    return [
      { name: 'fc.weight', variable: this.weight, kind: 'param' },
      { name: 'features.weight', variable: this.scale, kind: 'frozen' },
      { name: 'features.running_mean', variable: this.runningMean, kind: 'buffer' },
    ];
  }

  trainableVariables(): tf.Variable[] {
    return [this.weight];
  }

  apply(x: tf.Tensor4D, training: boolean): tf.Tensor2D {
    return tf.tidy(() => {
      const h = tf.matMul(tf.reshape(x, [x.shape[0], this.inputDim]), this.weight);
      let mean: tf.Tensor = this.runningMean;
      if (training) {
        mean = tf.mean(h, 0);
        this.runningMean.assign(tf.add(tf.mul(this.runningMean, 0.9), tf.mul(mean, 0.1)));
      }
      return tf.mul(tf.sub(h, mean), this.scale) as tf.Tensor2D;
    });
  }

  paramCount(): number {
    return this.weight.size + this.scale.size;
  }

  copyFrom(other: Backbone): void {
    const src = other.variables();
    this.variables().forEach((v, i) => v.variable.assign(src[i].variable));
  }

  dispose(): void {
    for (const v of this.variables()) v.variable.dispose();
  }
}

/** Seeded standard-normal matrix [rows, cols] row-major. */
export function randn(rng: Rng, rows: number, cols: number, scale = 1): Float32Array {
  const a = new Float32Array(rows * cols);
  for (let i = 0; i < a.length; i++) a[i] = rng.normal() * scale;
  return a;
}

/** Seeded labels in 0..n-1. */
export function randomLabels(rng: Rng, count: number, n: number): Int32Array {
  const a = new Int32Array(count);
  for (let i = 0; i < count; i++) a[i] = rng.int(n);
  return a;
}

/** The DCC of a head as plain arrays: vectors [S][D] and labels [S]. */
export function dccSnapshot(head: AttFcHead): { vectors: number[][]; labels: number[]; pointer: number; filled: number } {
  const s = head.queue.getState();
  const flat: number[] = [];
  for (const v of s.vectors) for (const x of v) flat.push(x);
  const D = head.embeddingSize;
  const vectors: number[][] = [];
  for (let j = 0; j < head.queueSize; j++) vectors.push(flat.slice(j * D, (j + 1) * D));
  return { vectors, labels: Array.from(s.labels), pointer: s.pointer, filled: s.filled };
}

export interface ReferenceCase {
  queries: Float32Array; // [B, D] raw
  keys: Float32Array; // [B*(K-1), D] raw
  labels: Int32Array;
  keysPerSample: number;
  dim: number;
  dccVectors: number[][];
  dccLabels: number[];
  margin: MarginOptions; // straight-through, m1 = 1, m3 = 0 (ArcFace)
  attention: 'softmax' | 'mean' | 'single';
  temperature: number;
  masking: boolean;
}

export interface ReferenceResult {
  loss: number;
  /** dLoss/dq for the raw queries, [B][D]. */
  grad: number[][];
  /** GCCs [B][D]. */
  centres: number[][];
  maskedCount: number;
  hardestNegCos: number;
}

const clamp1 = (x: number) => Math.min(1, Math.max(-1, x));
const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};
const unit = (a: number[]) => {
  const n = Math.max(Math.sqrt(dot(a, a)), 1e-12);
  return a.map((x) => x / n);
};

/** The AttFC loss written out loop by loop, straight from the method (docs/method.md). */
export function referenceAttFc(c: ReferenceCase): ReferenceResult {
  const { dim: D, keysPerSample: K1, margin } = c;
  const B = c.labels.length;
  const s = margin.s;
  let loss = 0;
  let maskedCount = 0;
  let hardestSum = 0;
  let hardestRows = 0;
  const grad: number[][] = [];
  const centres: number[][] = [];
  for (let i = 0; i < B; i++) {
    const qRaw = Array.from(c.queries.subarray(i * D, (i + 1) * D));
    const qNorm = Math.sqrt(dot(qRaw, qRaw));
    const q = unit(qRaw);
    // attention over the K-1 keys
    const g: number[][] = [];
    for (let j = 0; j < K1; j++) g.push(Array.from(c.keys.subarray((i * K1 + j) * D, (i * K1 + j + 1) * D)));
    const cos = g.map((gj) => dot(q, unit(gj)));
    let a: number[];
    if (c.attention === 'single') a = cos.map((_, j) => (j === 0 ? 1 : 0));
    else if (c.attention === 'mean') a = cos.map(() => 1 / K1);
    else {
      const e = cos.map((x) => Math.exp(x / c.temperature));
      const tot = e.reduce((p, x) => p + x, 0);
      a = e.map((x) => x / tot);
    }
    const centre = unit(new Array(D).fill(0).map((_, d) => g.reduce((p, gj, j) => p + a[j] * gj[d], 0)));
    centres.push(centre);
    // logits: column 0 = ArcFace positive, then every DCC slot
    const z0raw = dot(q, centre);
    const z0 = clamp1(z0raw);
    const logits = [s * Math.cos(Math.acos(z0) + margin.m2)];
    const dLogitDq: (number[] | null)[] = [Math.abs(z0raw) <= 1 ? centre.map((x) => s * x) : null];
    let hardest = -Infinity;
    for (let j = 0; j < c.dccVectors.length; j++) {
      const zraw = dot(q, c.dccVectors[j]);
      if (c.masking && c.dccLabels[j] === c.labels[i]) {
        maskedCount++;
        logits.push(-s);
        dLogitDq.push(null);
      } else {
        hardest = Math.max(hardest, clamp1(zraw));
        logits.push(s * clamp1(zraw));
        dLogitDq.push(zraw >= -1 && zraw <= 1 ? c.dccVectors[j].map((x) => s * x) : null);
      }
    }
    if (hardest > -Infinity) {
      hardestSum += hardest;
      hardestRows++;
    }
    const mx = Math.max(...logits);
    const sum = logits.reduce((p, l) => p + Math.exp(l - mx), 0);
    loss += mx + Math.log(sum) - logits[0];
    // dL/dq (unit) = sum_j (p_j - [j = 0]) dlogit_j/dq, then through q = qRaw / |qRaw|
    const gq = new Array(D).fill(0);
    logits.forEach((l, j) => {
      const dl = Math.exp(l - mx) / sum - (j === 0 ? 1 : 0);
      const dz = dLogitDq[j];
      if (dz) for (let d = 0; d < D; d++) gq[d] += dl * dz[d];
    });
    const proj = dot(gq, q);
    grad.push(gq.map((x, d) => (x - proj * q[d]) / qNorm / B));
  }
  return { loss: loss / B, grad, centres, maskedCount, hardestNegCos: hardestSum / hardestRows };
}

/** Largest |a - b| over two equally long number lists. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Largest |x|. */
export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

export interface Scenario {
  batch: number;
  dim: number;
  numClasses: number;
  queueSize: number;
  sampleNum: number;
  chunkSlots?: number;
  deviceBudgetBytes?: number;
  masking?: boolean;
  attention?: 'softmax' | 'mean' | 'single';
  temperature?: number;
  margin: MarginOptions;
  /** Steps (loss + afterStep, no tape) that fill the DCC with real GCCs before the checked batch. */
  warmupSteps: number;
  seed: number;
}

export interface ScenarioBatch {
  queries: Float32Array;
  keys: Float32Array;
  labels: Int32Array;
}

/** A batch whose keys lie near their queries (like real same-identity images), seeded. */
export function scenarioBatch(rng: Rng, sc: Scenario): ScenarioBatch {
  const { batch: B, dim: D, sampleNum: K } = sc;
  const queries = randn(rng, B, D);
  const keys = new Float32Array(B * (K - 1) * D);
  for (let i = 0; i < B; i++)
    for (let j = 0; j < K - 1; j++)
      for (let d = 0; d < D; d++) keys[(i * (K - 1) + j) * D + d] = queries[i * D + d] * 2 + rng.normal() * 1.5;
  return { queries, keys, labels: randomLabels(rng, B, sc.numClasses) };
}

/** Runs the head's loss on a batch without a tape and enqueues it. */
export function warmupStep(head: AttFcHead, b: ScenarioBatch, keysPerSample: number): void {
  const D = head.embeddingSize;
  tf.tidy(() => {
    head.loss({
      embeddings: tf.tensor2d(b.queries, [b.labels.length, D]),
      labels: b.labels,
      keyEmbeddings: tf.tensor2d(b.keys, [b.labels.length * keysPerSample, D]),
    });
  });
  head.afterStep([], { lr: 0.1, momentum: 0.9, weightDecay: 0 });
}

/** Loss value and dLoss/dq of the head through tf.variableGrads (the way the trainer calls it). */
export function headLossAndGrad(head: AttFcHead, b: ScenarioBatch, keysPerSample: number): { loss: number; grad: Float32Array } {
  const D = head.embeddingSize;
  const B = b.labels.length;
  const q = tf.tidy(() => tf.variable(tf.tensor2d(b.queries, [B, D])));
  const keys = tf.tensor2d(b.keys, [B * keysPerSample, D]);
  const { value, grads } = tf.variableGrads(() => head.loss({ embeddings: q, labels: b.labels, keyEmbeddings: keys }), [q]);
  const out = { loss: value.dataSync()[0], grad: grads[q.name].dataSync() as Float32Array };
  value.dispose();
  tf.dispose(grads);
  q.dispose();
  keys.dispose();
  return out;
}

/** Builds the reference case for a batch against the head's current DCC. */
export function referenceFor(head: AttFcHead, b: ScenarioBatch, sc: Scenario): ReferenceCase {
  const snap = dccSnapshot(head);
  return {
    queries: b.queries,
    keys: b.keys,
    labels: b.labels,
    keysPerSample: sc.sampleNum - 1,
    dim: sc.dim,
    dccVectors: snap.vectors,
    dccLabels: snap.labels,
    margin: sc.margin,
    attention: sc.attention ?? 'softmax',
    temperature: sc.temperature ?? 1,
    masking: sc.masking ?? true,
  };
}

/** An AttFC head for a scenario (unset fields take the head's defaults). */
export function makeHead(sc: Scenario): AttFcHead {
  return new AttFcHead({
    numClasses: sc.numClasses,
    embeddingSize: sc.dim,
    batchSize: sc.batch,
    sampleNum: sc.sampleNum,
    queueSize: sc.queueSize,
    chunkSlots: sc.chunkSlots,
    deviceBudgetBytes: sc.deviceBudgetBytes,
    masking: sc.masking,
    attention: sc.attention,
    temperature: sc.temperature,
    margin: sc.margin,
    seed: sc.seed,
  });
}

/** The scenario of the device tests (wasm, torch): big enough for several chunks and real masking. */
export const DEVICE_SCENARIO: Scenario = {
  batch: 16,
  dim: 32,
  numClasses: 40,
  queueSize: 160,
  sampleNum: 3,
  margin: { s: 32, m1: 1, m2: 0.5, m3: 0, gradient: 'straight-through' },
  warmupSteps: 12,
  seed: 31,
};
