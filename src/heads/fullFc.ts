// Full FC head (insightface arcface_torch with sample rate 1): one learned class centre per identity,
// W as a tf.Variable that the trainer's optimizer updates like a backbone weight, and the margin
// softmax over cos(x, w_c) = normalize(x) . normalize(w_c). Only usable while W fits the WASM heap.
// W is stored [N, D], one row per class like arcface_torch's weight (see cosineToCentres for why
// rows are cheaper than a [D, N] layout on wasm).
import * as tf from '@tensorflow/tfjs-core';
import { AttfcError } from '../errors.js';
import { WASM_HEAP_MAX_BYTES, formatBytes } from '../engine/index.js';
import { Rng } from '../util/rng.js';
import { ARCFACE, cosineToCentres, cosineStats, marginSoftmaxLoss, validateMargin, type MarginOptions } from './margin.js';
import type { Head, HeadInput, HeadState, SgdSettings } from './types.js';
import { CosineDiagnostics, assertEmbeddings, assertHeadSizes, assertLabelsInRange } from './shared.js';
import { rowShare, type HeadCollectives } from './collectives.js';

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
  /** Class centres [N, D], one row per class. */
  readonly weight: tf.Variable<tf.Rank.R2>;
  private readonly diag = new CosineDiagnostics();
  private readonly collectives: HeadCollectives | undefined;

  constructor(opts: FullFcOptions) {
    const { numClasses: n, embeddingSize: d } = opts;
    assertHeadSizes(n, d, 'fc');
    this.margin = opts.margin ?? ARCFACE;
    validateMargin(this.margin);
    if (tf.getBackend() === 'wasm') {
      // check before allocating anything: past the heap limit wasm would corrupt memory, not fail
      const e = estimateFullFcHeap(n, d, opts.batchSize ?? 64);
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
    // normal(0, 0.01) like arcface_torch
    const rng = new Rng(opts.seed);
    const init = new Float32Array(n * d);
    for (let i = 0; i < init.length; i++) init[i] = 0.01 * rng.normal();
    const t = tf.tensor2d(init, [n, d]);
    this.weight = tf.variable(t, true);
    t.dispose();
  }

  prepare(labels: Int32Array): void {
    assertLabelsInRange(labels, this.numClasses, 'fc');
  }

  loss(input: HeadInput): tf.Scalar {
    const { embeddings, labels } = input;
    assertLabelsInRange(labels, this.numClasses, 'fc');
    assertEmbeddings(embeddings, labels, this.embeddingSize, 'fc');
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

  afterStep(stepGrads: tf.Tensor[], _sgd: SgdSettings): void {
    if (stepGrads.length !== 0) throw new Error(`head fc: afterStep got ${stepGrads.length} step gradients, expected none`);
  }

  /** positiveCos: mean cosine to the own centre; hardestNegCos: batch mean of the largest other cosine. */
  diagnostics(): Record<string, number> {
    return this.diag.read();
  }

  /** W plus the optimizer's momentum for it. */
  stateBytes(): number {
    return 2 * this.embeddingSize * this.numClasses * 4;
  }

  /** W as a copy, [N, D] row-major (row c is class c). */
  getState(): HeadState {
    return {
      arrays: { W: new Float32Array(this.weight.dataSync()) },
      json: { kind: this.kind, numClasses: this.numClasses, embeddingSize: this.embeddingSize, layout: 'W [N, D] row-major' },
    };
  }

  setState(s: HeadState): void {
    const { numClasses: n, embeddingSize: d } = this;
    if (s.json.numClasses !== undefined && (s.json.numClasses !== n || s.json.embeddingSize !== d))
      throw new AttfcError(`head fc state: numClasses ${String(s.json.numClasses)} x embedding ${String(s.json.embeddingSize)}, expected ${n} x ${d}`);
    const w = s.arrays.W;
    if (!(w instanceof Float32Array) || w.length !== d * n)
      throw new AttfcError(`head fc state: W has ${w ? w.length : 'no'} float32 values, expected ${n * d} (${n} classes x embedding ${d})`);
    // copied: on the cpu backend a tensor keeps the very array it was made from
    const t = tf.tensor2d(w.slice(), [n, d]);
    this.weight.assign(t);
    t.dispose();
  }

  dispose(): void {
    this.diag.dispose();
    this.weight.dispose();
  }
}
