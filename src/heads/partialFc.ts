// Partial FC head (An et al.; insightface arcface_torch PartialFC_V2 sampling): W is kept in full, but
// each step computes the margin softmax over only the batch's positive classes plus uniformly drawn
// negatives, max(#positives, round(r*N)) class centres in all.
//
// W and its momentum (partialFcTables.ts) live OUTSIDE the WASM heap (512 x 2M with momentum is 8 GB):
// in plain JS Float32Arrays, or in libtorch memory on backend torch; class-major ([N, D], one row per
// class). Per step only the sampled centres become a fresh tf.Variable Wsub [k, D] (one row per sampled
// class, like arcface_torch's weight[index]; rows keep the gather/update contiguous and spare wasm the
// full-table transposes a [D, k] operand costs); afterStep applies PyTorch SGD (v = mu*v + (g + wd*w);
// w -= lr*v) with Wsub's gradient to the sampled rows only (in JS, or as ATen ops on torch).
//
// Momentum: one full momentum row per class, updated only when the class is sampled and frozen
// otherwise (the semantics of the original PartialFC, which gathers/scatters a full weight_mom).
// PartialFC_V2 instead feeds the dense gradient of the indexed weight to a dense SGD, so there weight
// decay and momentum also move every unsampled centre each step; that would cost a full N x D pass
// per step here (2.2 s at 512 x 2M), which is what Partial FC exists to avoid.
//
// Sharded (--shard-head, a distributed run): the tables hold this rank's contiguous classes only; every
// rank draws the same global sample from the global labels (as the replicated head does), keeps the
// sampled classes it holds, and the softmax is combined across the ranks (sharded/shardedSoftmax.ts).
import * as tf from '@tensorflow/tfjs-core';
import { AttfcError } from '../errors.js';
import { WASM_HEAP_MAX_BYTES, formatBytes } from '../engine/index.js';
import { Rng } from '../util/rng.js';
import { ARCFACE, cosineToCentres, cosineStats, marginSoftmaxLoss, validateMargin, type MarginOptions } from './margin.js';
import { CosineDiagnostics, assertEmbeddings, assertHeadSizes, assertLabelsInRange, sameLabels } from './shared.js';
import type { Head, HeadInput, HeadState, SgdSettings } from './types.js';
import { JsCentreTables, TorchCentreTables, type CentreTables } from './partialFcTables.js';
import { rowShare, type HeadCollectives } from './collectives.js';
import { currentTorchBackend } from '../engine/torch/rowTable.js';
import { indicesInRange, lowerBound } from './sharded/shardMath.js';
import { float32, headShard, type TableShard } from './sharded/shardState.js';
import { gatherBatch, shardedMarginSoftmax } from './sharded/shardedSoftmax.js';

export interface PartialFcOptions {
  numClasses: number;
  embeddingSize: number;
  /** Fraction r of the classes used per step, in (0, 1]. */
  sampleRate: number;
  /** Default ARCFACE. */
  margin?: MarginOptions;
  seed: number;
  /** Classes per storage chunk; default: as many as fit 2^28 floats (1 GiB). Tests use small values. */
  rowsPerChunk?: number;
  /** Batch size, for the WASM heap check (default 128). */
  batchSize?: number;
  /**
   * Data-parallel processes: prepare() receives the whole batch's labels (every rank samples the same
   * classes), loss() this process's rows, and returns their share of the batch mean.
   */
  collectives?: HeadCollectives;
  /** With collectives of more than one rank: hold only this rank's classes (model parallel). */
  shard?: boolean;
}

/** Centres sampled per step: max(positives, round(r * N)), at least 1 (positives <= batch). */
export function partialFcSampleSize(numClasses: number, sampleRate: number, batchSize: number): number {
  return Math.min(numClasses, Math.max(batchSize, Math.round(sampleRate * numClasses), 1));
}

/**
 * WASM heap of one Partial FC step with k sampled centres: the sampled rows, their normalised,
 * transposed and XNNPACK-packed copies, gradients and the heap's fragmentation come to about 16
 * [k, D] tables, plus about 6 [B, k] logit tensors. Calibrated on `npm run bench:heads` (B 128, D 512):
 * the heap reached 1.05 GiB at k = 30,000, 1.69 GiB at 50,000 and 3.29 GiB at 100,000 (this gives 1.0,
 * 1.67 and 3.34 GiB); at k = 150,000 XNNPACK failed to allocate its packed copy inside WASM.
 */
export function estimatePartialFcHeap(sampled: number, embeddingSize: number, batchSize: number): number {
  return 4 * sampled * (16 * embeddingSize + 6 * batchSize);
}

/** The classes of a step, ascending, and each batch row's index among them (its logit column). */
export interface PartialFcSample {
  classes: Int32Array;
  targets: Int32Array;
}

export class PartialFcHead implements Head {
  readonly kind = 'pfc' as const;
  readonly numClasses: number;
  readonly embeddingSize: number;
  readonly sampleRate: number;
  readonly margin: MarginOptions;
  /** Columns per step before positives are added: round(r * N), at least 1. */
  readonly numSample: number;
  private readonly tables: CentreTables;
  private readonly sampler: Rng;
  /** Scratch marks for the batch's positive classes (cleared after each prepare). */
  private readonly isPositive: Uint8Array;
  private readonly diag = new CosineDiagnostics();
  private sample: PartialFcSample | null = null;
  private sampleLabels: Int32Array | null = null;
  private wsub: tf.Variable<tf.Rank.R2> | null = null;
  private readonly collectives: HeadCollectives | undefined;
  readonly sharding?: TableShard;
  /** Sharded: this step's sampled classes among this rank's rows (local row numbers), and each global row's column among them (-1: another rank's). */
  private shardStep: { rows: Int32Array; targets: Int32Array } | null = null;
  private shardDiagnostics: Record<string, number> = {};

  constructor(opts: PartialFcOptions) {
    const { numClasses: n, embeddingSize: d, sampleRate: r } = opts;
    assertHeadSizes(n, d, 'pfc');
    if (!(Number.isFinite(r) && r > 0 && r <= 1)) throw new AttfcError(`head pfc: sampleRate must be in (0, 1] (got ${r})`);
    this.margin = opts.margin ?? ARCFACE;
    validateMargin(this.margin);
    this.numClasses = n;
    this.embeddingSize = d;
    this.sampleRate = r;
    this.collectives = opts.collectives;
    this.numSample = Math.min(n, Math.max(1, Math.round(r * n)));
    if (tf.getBackend() === 'wasm') {
      // refuse before allocating: XNNPACK's own allocations fail silently inside WASM (no guard sees them)
      const B = opts.batchSize ?? 128;
      const k = partialFcSampleSize(n, r, B);
      const need = estimatePartialFcHeap(k, d, B);
      const limit = 0.95 * WASM_HEAP_MAX_BYTES;
      if (need > limit) {
        const maxRate = Math.floor((limit / (4 * (16 * d + 6 * B)) / n) * 1000) / 1000;
        throw new AttfcError(
          `head pfc: sampling ${k.toLocaleString('en-US')} of ${n.toLocaleString('en-US')} classes per step (sampleRate ${r}) needs about ${formatBytes(need)} ` +
            `of WASM heap at batch ${B} (sampled centres, their normalised and packed copies, gradients, logits) but one wasm instance holds at most ` +
            `${formatBytes(WASM_HEAP_MAX_BYTES)}: ${maxRate > 0 ? `use --sample-rate ${maxRate} or lower, or ` : ''}use --head attfc`,
        );
      }
    }
    this.isPositive = new Uint8Array(n);
    this.sharding = headShard(opts, n, d, 'head pfc', 'classes');
    const [first, end] = this.sharding?.range ?? [0, n];
    // normal(0, 0.01) like arcface_torch (the same values in JS and in libtorch memory), in class order
    // (a shard draws the other classes' values too); sampling draws from its own stream
    const rng = new Rng(opts.seed);
    for (let i = 0; i < first * d; i++) rng.normal();
    const torch = currentTorchBackend();
    this.tables = torch ? new TorchCentreTables(torch, end - first, d, rng) : new JsCentreTables(end - first, d, rng, opts.rowsPerChunk);
    for (let i = end * d; i < n * d; i++) rng.normal();
    this.sampler = rng.fork();
  }

  /** Samples this step's classes and uploads their centres as Wsub [k, D]. */
  prepare(labels: Int32Array): void {
    assertLabelsInRange(labels, this.numClasses, 'pfc');
    this.releaseStep();
    const classes = this.sampleClasses(labels);
    const targets = new Int32Array(labels.length);
    for (let i = 0; i < labels.length; i++) targets[i] = lowerBound(classes, labels[i]);
    this.sample = { classes, targets };
    this.sampleLabels = labels.slice();
    let rows = classes;
    if (this.sharding) {
      // the sampled classes this rank holds: a contiguous run of the ascending sample
      const [first, end] = this.sharding.range;
      const [lo, hi] = indicesInRange(classes, [first, end]);
      rows = classes.slice(lo, hi).map((c) => c - first);
      const own = Int32Array.from(labels, (y, i) => (y >= first && y < end ? targets[i] - lo : -1));
      this.shardStep = { rows, targets: own };
      if (rows.length === 0) return;
    }
    this.wsub = tf.tidy(() => tf.variable(this.tables.gather(rows), true));
  }

  /**
   * All distinct positive classes plus uniform negatives without replacement, max(#positives,
   * numSample) classes in ascending order (selection sampling, Knuth's algorithm S, over the negatives).
   */
  private sampleClasses(labels: Int32Array): Int32Array {
    const n = this.numClasses;
    const mark = this.isPositive;
    let positives = 0;
    for (const y of labels) {
      if (!mark[y]) {
        mark[y] = 1;
        positives++;
      }
    }
    const k = Math.max(positives, this.numSample);
    const out = new Int32Array(k);
    let needed = k - positives;
    let remaining = n - positives;
    let j = 0;
    for (let c = 0; c < n && j < k; c++) {
      if (mark[c]) {
        out[j++] = c;
        mark[c] = 0;
      } else if (needed > 0) {
        if (this.sampler.next() * remaining < needed) {
          out[j++] = c;
          needed--;
        }
        remaining--;
      }
    }
    return out;
  }

  loss(input: HeadInput): tf.Scalar {
    const { embeddings, labels } = input;
    const wsub = this.wsub;
    const sample = this.sample;
    if (!sample || !this.sampleLabels || !(wsub || this.shardStep)) throw new Error('head pfc: loss() before prepare(labels)');
    // with collectives, prepare() saw the whole batch and loss() sees this process's rows of it
    const [start, end] = this.collectives?.rows ?? [0, this.sampleLabels.length];
    if (!sameLabels(labels, this.sampleLabels.subarray(start, end))) throw new Error('head pfc: loss() labels differ from the ones given to prepare()');
    assertEmbeddings(embeddings, labels, this.embeddingSize, 'pfc');
    const step = this.shardStep;
    const c = this.sharding?.collectives;
    if (c && step)
      return tf.tidy(() => {
        const r = shardedMarginSoftmax(c, gatherBatch(c, embeddings), wsub, step.targets, this.margin);
        this.shardDiagnostics = r.diagnostics;
        return r.loss;
      });
    if (!wsub) throw new Error('head pfc: loss() before prepare(labels)');
    return tf.tidy(() => {
      const target = tf.tensor1d(sample.targets.subarray(start, end), 'int32');
      const cos = cosineToCentres(embeddings, wsub);
      if (sample.classes.length >= 2) this.diag.set(cosineStats(cos, target));
      return tf.mul(marginSoftmaxLoss(cos, target, this.margin), rowShare(this.collectives, labels.length)) as tf.Scalar;
    });
  }

  trainableVariables(): tf.Variable[] {
    return [];
  }

  /** [Wsub] between prepare() and afterStep(), else []. */
  stepVariables(): tf.Variable[] {
    return this.wsub ? [this.wsub] : [];
  }

  /** Applies SGD to the sampled rows with the gradient of Wsub, then frees Wsub. The caller owns stepGrads. */
  afterStep(stepGrads: tf.Tensor[], sgd: SgdSettings): void {
    const wsub = this.wsub;
    const sample = this.sample;
    if (!sample || !(wsub || this.shardStep)) throw new Error('head pfc: afterStep() before prepare(labels)');
    if (!wsub) {
      // a shard that holds none of this step's classes
      if (stepGrads.length !== 0) throw new Error(`head pfc: afterStep got ${stepGrads.length} gradients for a shard without sampled classes`);
      this.releaseStep();
      return;
    }
    const g = stepGrads[0];
    if (stepGrads.length !== 1 || !g || g.shape[0] !== wsub.shape[0] || g.shape[1] !== wsub.shape[1])
      throw new Error(`head pfc: afterStep expects one gradient of shape [${wsub.shape.join(', ')}]`);
    this.tables.sgd(this.shardStep?.rows ?? sample.classes, g as tf.Tensor2D, sgd);
    this.releaseStep();
  }

  /** Classes and targets of the last prepare() (copies), or null before the first / after setState. */
  lastSample(): PartialFcSample | null {
    return this.sample ? { classes: this.sample.classes.slice(), targets: this.sample.targets.slice() } : null;
  }

  /** positiveCos / hardestNegCos over the sampled centres, and sampledClasses of the last prepare. */
  diagnostics(): Record<string, number> {
    const out = this.sharding ? { ...this.shardDiagnostics } : this.diag.read();
    if (this.sample) out.sampledClasses = this.sample.classes.length;
    return out;
  }

  /** W and momentum, in JS or libtorch memory (the per-step Wsub is transient); sharded: this rank's rows. */
  stateBytes(): number {
    return 2 * (this.sharding?.ownRows ?? this.numClasses) * this.embeddingSize * 4;
  }

  /**
   * W and momentum as class-major [N, D] streams split into chunks `W.0`, `W.1`, ... and `momentum.0`,
   * ...; in JS memory these are the LIVE arrays (8 GB at 2M classes cannot be copied casually):
   * serialise them before the next afterStep(). json holds the sizes and the sampler's stream position.
   * Sharded: a collective; the whole tables on rank 0 only.
   */
  getState(): HeadState {
    const arrays: Record<string, Float32Array> = {};
    const shard = this.sharding;
    // a shard sends its rows piece by piece, straight from its tables
    const { weights, momentum } = shard
      ? { weights: shard.gather((s, n) => this.tables.readRows('weights', s, n), float32) ?? [], momentum: shard.gather((s, n) => this.tables.readRows('momentum', s, n), float32) ?? [] }
      : this.tables.state();
    weights.forEach((c, i) => (arrays[`W.${i}`] = c));
    momentum.forEach((c, i) => (arrays[`momentum.${i}`] = c));
    return {
      arrays,
      json: {
        kind: this.kind,
        numClasses: this.numClasses,
        embeddingSize: this.embeddingSize,
        sampleRate: this.sampleRate,
        chunks: weights.length,
        layout: 'class-major [N, D] row-major, split into chunks',
        sampler: this.sampler.getState(),
      },
    };
  }

  /** Copies W and momentum in (any chunking of the same [N, D] streams) and restores the sampler. */
  setState(s: HeadState): void {
    const { numClasses: n, embeddingSize: d } = this;
    if (s.json.numClasses !== n || s.json.embeddingSize !== d)
      throw new AttfcError(`head pfc state: numClasses ${String(s.json.numClasses)} x embedding ${String(s.json.embeddingSize)}, expected ${n} x ${d}`);
    const streams: Record<'W' | 'momentum', Float32Array[]> = { W: [], momentum: [] };
    for (const name of ['W', 'momentum'] as const) {
      for (let i = 0; s.arrays[`${name}.${i}`] !== undefined; i++) {
        const p = s.arrays[`${name}.${i}`];
        if (!(p instanceof Float32Array)) throw new AttfcError(`head pfc state: ${name}.${i} must be float32`);
        streams[name].push(p);
      }
      const got = streams[name].reduce((a, p) => a + p.length, 0);
      if (got !== n * d) throw new AttfcError(`head pfc state: ${name}.* hold ${got} values, expected ${n * d} (${n} classes x embedding ${d})`);
      if (this.sharding) streams[name] = [this.sharding.slice(streams[name], float32, `head pfc state ${name}`)];
    }
    this.tables.restore(streams.W, streams.momentum);
    const sampler = s.json.sampler;
    if (Array.isArray(sampler)) this.sampler.setState(sampler.map((x) => (x === null ? NaN : Number(x))));
    this.releaseStep();
    this.sample = null;
  }

  dispose(): void {
    this.releaseStep();
    this.diag.dispose();
    this.tables.dispose();
  }

  /** Frees Wsub; the sample stays readable for logs until the next prepare(). */
  private releaseStep(): void {
    this.wsub?.dispose();
    this.wsub = null;
    this.sampleLabels = null;
    this.shardStep = null;
  }
}
