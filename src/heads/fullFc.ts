// Full FC head (insightface arcface_torch with sample rate 1): one learned class centre per identity,
// W as a tf.Variable that the trainer's optimizer updates like a backbone weight, and the margin
// softmax over cos(x, w_c) = normalize(x) . normalize(w_c). Only usable while W fits the WASM heap.
// Sharded (--shard-head, a distributed run): W holds this rank's contiguous classes only, and the
// softmax over all classes is combined across the ranks (sharded/shardedSoftmax.ts).
// W is stored [N, D], one row per class like arcface_torch's weight (see cosineToCentres for why
// rows are cheaper than a [D, N] layout on wasm).
import * as tf from '@tensorflow/tfjs-core';
import { AttfcError } from '../errors.js';
import { WASM_HEAP_MAX_BYTES, formatBytes } from '../engine/index.js';
import { Rng } from '../util/rng.js';
import { ARCFACE, cosineToCentres, cosineStats, marginSoftmaxLoss, validateMargin, type MarginOptions } from './margin.js';
import type { Head, HeadInput, HeadState, SgdSettings } from './types.js';
import { CosineDiagnostics, assertEmbeddings, assertHeadSizes, assertLabelsInRange, sameLabels } from './shared.js';
import { rowShare, type HeadCollectives } from './collectives.js';
import { headShard, type TableShard } from './sharded/shardState.js';
import { gatherBatch, shardedMarginSoftmax } from './sharded/shardedSoftmax.js';

export interface FullFcOptions {
  numClasses: number;
  embeddingSize: number;
  /** Default ARCFACE. */
  margin?: MarginOptions;
  seed: number;
  /** Batch size assumed by the WASM heap estimate (the logits are [B, N]); default 64. */
  batchSize?: number;
  /** Data-parallel processes: loss() sees this process's rows and returns their share of the batch mean. */
  collectives?: HeadCollectives;
  /** With collectives of more than one rank: hold only this rank's classes (model parallel). */
  shard?: boolean;
}

/** Bytes a full-FC training step keeps on the WASM heap at its peak, by part. */
export interface FullFcHeapEstimate {
  /** W itself. */
  weights: number;
  /** The optimizer's momentum slot for W. */
  momentum: number;
  /** normalize(W), alive through the backward pass. */
  normalised: number;
  /** XNNPACK's packed copy of the matmul operand, which it caches while the operand lives. */
  packed: number;
  /** dW (and d normalize(W)) before the optimizer applies it. */
  gradient: number;
  /** Autodiff and optimizer temporaries plus fragmentation (measured, see estimateFullFcHeap). */
  transient: number;
  /** Cosines, scaled logits, softmax and their gradient, each [B, N]. */
  logits: number;
  total: number;
}

/**
 * Estimates the heap a full-FC step needs: five N x D tables and four B x N logit tensors that are
 * live at once, plus ten more tables of transient buffers and heap fragmentation. That allowance is
 * calibrated on `npm run bench:heads` (B = 128: the heap reached 1.53 GiB at N = 40k and 3.86 GiB at 100k,
 * about 15-20 tables).
 */
export function estimateFullFcHeap(numClasses: number, embeddingSize: number, batchSize: number): FullFcHeapEstimate {
  const table = numClasses * embeddingSize * 4;
  const e = { weights: table, momentum: table, normalised: table, packed: table, gradient: table, transient: 10 * table, logits: 4 * batchSize * numClasses * 4 };
  return { ...e, total: e.weights + e.momentum + e.normalised + e.packed + e.gradient + e.transient + e.logits };
}

export class FullFcHead implements Head {
  readonly kind = 'fc' as const;
  readonly numClasses: number;
  readonly embeddingSize: number;
  readonly margin: MarginOptions;
  /** Class centres [N, D], one row per class (sharded: this rank's classes, [end - start, D]). */
  readonly weight: tf.Variable<tf.Rank.R2>;
  readonly sharding?: TableShard;
  private readonly diag = new CosineDiagnostics();
  private readonly collectives: HeadCollectives | undefined;
  /** Sharded: the global batch's labels from prepare(), and the last loss's diagnostics. */
  private batchLabels: Int32Array | null = null;
  private shardDiagnostics: Record<string, number> = {};

  constructor(opts: FullFcOptions) {
    const { numClasses: n, embeddingSize: d } = opts;
    assertHeadSizes(n, d, 'fc');
    this.margin = opts.margin ?? ARCFACE;
    validateMargin(this.margin);
    this.sharding = headShard(opts, n, d, 'head fc', 'classes', true);
    const [first, end] = this.sharding?.range ?? [0, n];
    if (tf.getBackend() === 'wasm') {
      // check before allocating anything: past the heap limit wasm would corrupt memory, not fail
      const e = estimateFullFcHeap(end - first, d, opts.batchSize ?? 64);
      if (e.total > WASM_HEAP_MAX_BYTES)
        throw new AttfcError(
          `head fc: ${n} classes x embedding ${d} needs about ${formatBytes(e.total)} of WASM heap per step ` +
            `(W ${formatBytes(e.weights)}, momentum ${formatBytes(e.momentum)}, normalised W ${formatBytes(e.normalised)}, ` +
            `XNNPACK packed copy ${formatBytes(e.packed)}, gradient ${formatBytes(e.gradient)}, logits ${formatBytes(e.logits)} at batch ${opts.batchSize ?? 64}) ` +
            `but one wasm instance holds at most ${formatBytes(WASM_HEAP_MAX_BYTES)}: use --head pfc or --head attfc`,
        );
    }
    this.numClasses = n;
    this.embeddingSize = d;
    this.collectives = opts.collectives;
    // normal(0, 0.01) like arcface_torch, in class order (a shard draws the classes before its own too)
    const rng = new Rng(opts.seed);
    for (let i = 0; i < first * d; i++) rng.normal();
    const init = new Float32Array((end - first) * d);
    for (let i = 0; i < init.length; i++) init[i] = 0.01 * rng.normal();
    const t = tf.tensor2d(init, [end - first, d]);
    this.weight = tf.variable(t, true);
    t.dispose();
  }

  prepare(labels: Int32Array): void {
    assertLabelsInRange(labels, this.numClasses, 'fc');
    if (this.sharding) this.batchLabels = labels.slice();
  }

  loss(input: HeadInput): tf.Scalar {
    const { embeddings, labels } = input;
    assertLabelsInRange(labels, this.numClasses, 'fc');
    assertEmbeddings(embeddings, labels, this.embeddingSize, 'fc');
    if (this.sharding) return this.shardedLoss(embeddings, labels, this.sharding);
    return tf.tidy(() => {
      const target = tf.tensor1d(labels, 'int32');
      const cos = cosineToCentres(embeddings, this.weight);
      this.diag.set(cosineStats(cos, target));
      return tf.mul(marginSoftmaxLoss(cos, target, this.margin), rowShare(this.collectives, labels.length)) as tf.Scalar;
    });
  }

  trainableVariables(): tf.Variable[] {
    return [this.weight];
  }

  stepVariables(): tf.Variable[] {
    return [];
  }

  /** The whole batch's margin softmax over every rank's classes; this rank's W shard gets its own gradient. */
  private shardedLoss(embeddings: tf.Tensor2D, labels: Int32Array, shard: TableShard): tf.Scalar {
    const c = shard.collectives;
    const all = this.batchLabels;
    if (!all || !sameLabels(labels, all.subarray(c.rows[0], c.rows[1]))) throw new Error('head fc: loss() labels are not the rows of the batch given to prepare()');
    const [first, end] = shard.range;
    const target = Int32Array.from(all, (y) => (y >= first && y < end ? y - first : -1));
    return tf.tidy(() => {
      const r = shardedMarginSoftmax(c, gatherBatch(c, embeddings), this.weight, target, this.margin);
      this.shardDiagnostics = r.diagnostics;
      return r.loss;
    });
  }

  afterStep(stepGrads: tf.Tensor[], _sgd: SgdSettings): void {
    if (stepGrads.length !== 0) throw new Error(`head fc: afterStep got ${stepGrads.length} step gradients, expected none`);
  }

  /** positiveCos: mean cosine to the own centre; hardestNegCos: batch mean of the largest other cosine. */
  diagnostics(): Record<string, number> {
    return this.sharding ? { ...this.shardDiagnostics } : this.diag.read();
  }

  /** W plus the optimizer's momentum for it (sharded: this rank's rows). */
  stateBytes(): number {
    return 2 * this.embeddingSize * this.weight.shape[0] * 4;
  }

  /** W as a copy, [N, D] row-major (row c is class c). Sharded: a collective, W whole on rank 0 only. */
  getState(): HeadState {
    const json = { kind: this.kind, numClasses: this.numClasses, embeddingSize: this.embeddingSize, layout: 'W [N, D] row-major' };
    const own = new Float32Array(this.weight.dataSync());
    if (!this.sharding) return { arrays: { W: own }, json };
    const whole = this.sharding.gatherTrainable(0, own);
    return { arrays: whole ? { W: whole } : {}, json };
  }

  setState(s: HeadState): void {
    const { numClasses: n, embeddingSize: d } = this;
    if (s.json.numClasses !== undefined && (s.json.numClasses !== n || s.json.embeddingSize !== d))
      throw new AttfcError(`head fc state: numClasses ${String(s.json.numClasses)} x embedding ${String(s.json.embeddingSize)}, expected ${n} x ${d}`);
    const w = s.arrays.W;
    if (!(w instanceof Float32Array) || w.length !== d * n)
      throw new AttfcError(`head fc state: W has ${w ? w.length : 'no'} float32 values, expected ${n * d} (${n} classes x embedding ${d})`);
    // copied: on the cpu backend a tensor keeps the very array it was made from
    const t = this.sharding ? tf.tensor2d(this.sharding.sliceTrainable(0, w), this.weight.shape) : tf.tensor2d(w.slice(), [n, d]);
    this.weight.assign(t);
    t.dispose();
  }

  dispose(): void {
    this.diag.dispose();
    this.weight.dispose();
  }
}
