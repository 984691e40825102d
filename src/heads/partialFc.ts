// Partial FC head (An et al.; insightface arcface_torch PartialFC_V2 sampling): W is kept in full, but
// each step computes the margin softmax over only the batch's positive classes plus uniformly drawn
// negatives, max(#positives, round(r*N)) class centres in all.
//
// W and its momentum live in plain JS Float32Arrays OUTSIDE the WASM heap (512 x 2M with momentum is
// 8 GB), class-major ([N, D], one contiguous row per class) in chunks of at most 2^28 floats. Per step
// only the sampled centres are uploaded, as a fresh tf.Variable Wsub [k, D] (one row per sampled class,
// like arcface_torch's weight[index]; rows keep the JS gather/update contiguous and spare wasm the
// full-table transposes a [D, k] operand costs); afterStep downloads its gradient and applies PyTorch
// SGD (v = mu*v + (g + wd*w); w -= lr*v) in JS to the sampled rows only.
//
// Momentum: one full momentum row per class, updated only when the class is sampled and frozen
// otherwise (the semantics of the original PartialFC, which gathers/scatters a full weight_mom).
// PartialFC_V2 instead feeds the dense gradient of the indexed weight to a dense SGD, so there weight
// decay and momentum also move every unsampled centre each step; that would cost a full N x D pass
// per step here (2.2 s at 512 x 2M), which is what Partial FC exists to avoid.
import { copyChunked } from '../util/chunks.js';
import * as tf from '@tensorflow/tfjs-core';
import { AttfcError } from '../errors.js';
import { WASM_HEAP_MAX_BYTES, formatBytes } from '../engine/index.js';
import { Rng } from '../util/rng.js';
import { ARCFACE, cosineToCentres, cosineStats, marginSoftmaxLoss, validateMargin, type MarginOptions } from './margin.js';
import { CosineDiagnostics, assertEmbeddings, assertHeadSizes, assertLabelsInRange } from './shared.js';
import type { Head, HeadInput, HeadState, SgdSettings } from './types.js';

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

const CHUNK_FLOATS = 2 ** 28;

/** N rows of D floats, split into chunks of rowsPerChunk rows (a single typed array tops out at 2^32-1). */
class RowTable {
  readonly chunks: Float32Array[] = [];

  constructor(
    readonly rows: number,
    readonly dim: number,
    readonly rowsPerChunk: number,
  ) {
    for (let r = 0; r < rows; r += rowsPerChunk) this.chunks.push(new Float32Array(Math.min(rowsPerChunk, rows - r) * dim));
  }

  /** Copies a flat row-major stream, however it is chunked, into this table; false on a size mismatch. */
  assignFlat(parts: Float32Array[]): boolean {
    let total = 0;
    for (const p of parts) total += p.length;
    if (total !== this.rows * this.dim) return false;
    copyChunked(parts, this.chunks);
    return true;
  }
}

export class PartialFcHead implements Head {
  readonly kind = 'pfc' as const;
  readonly numClasses: number;
  readonly embeddingSize: number;
  readonly sampleRate: number;
  readonly margin: MarginOptions;
  /** Columns per step before positives are added: round(r * N), at least 1. */
  readonly numSample: number;
  private readonly weights: RowTable;
  private readonly momentum: RowTable;
  private readonly sampler: Rng;
  /** Scratch marks for the batch's positive classes (cleared after each prepare). */
  private readonly isPositive: Uint8Array;
  private readonly diag = new CosineDiagnostics();
  private sample: PartialFcSample | null = null;
  private sampleLabels: Int32Array | null = null;
  private wsub: tf.Variable<tf.Rank.R2> | null = null;

  constructor(opts: PartialFcOptions) {
    const { numClasses: n, embeddingSize: d, sampleRate: r } = opts;
    assertHeadSizes(n, d, 'pfc');
    if (!(Number.isFinite(r) && r > 0 && r <= 1)) throw new AttfcError(`head pfc: sampleRate must be in (0, 1] (got ${r})`);
    this.margin = opts.margin ?? ARCFACE;
    validateMargin(this.margin);
    this.numClasses = n;
    this.embeddingSize = d;
    this.sampleRate = r;
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
    const rowsPerChunk = opts.rowsPerChunk ?? Math.max(1, Math.floor(CHUNK_FLOATS / d));
    if (!(Number.isInteger(rowsPerChunk) && rowsPerChunk >= 1))
      throw new Error(`head pfc: rowsPerChunk must be a whole number >= 1 (got ${rowsPerChunk})`);
    this.weights = new RowTable(n, d, rowsPerChunk);
    this.momentum = new RowTable(n, d, rowsPerChunk);
    this.isPositive = new Uint8Array(n);
    // normal(0, 0.01) like arcface_torch; sampling draws from its own stream
    const rng = new Rng(opts.seed);
    for (const chunk of this.weights.chunks) for (let i = 0; i < chunk.length; i++) chunk[i] = 0.01 * rng.normal();
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
    const t = tf.tensor2d(this.gatherRows(classes), [classes.length, this.embeddingSize]);
    this.wsub = tf.variable(t, true);
    t.dispose();
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

  /** The sampled centres as [k, D] row-major (row j = class classes[j]). */
  private gatherRows(classes: Int32Array): Float32Array {
    const { dim, rowsPerChunk, chunks } = this.weights;
    const out = new Float32Array(classes.length * dim);
    for (let j = 0; j < classes.length; j++) {
      const c = classes[j];
      const ch = Math.floor(c / rowsPerChunk);
      const off = (c - ch * rowsPerChunk) * dim;
      out.set(chunks[ch].subarray(off, off + dim), j * dim);
    }
    return out;
  }

  /** PyTorch SGD with momentum and weight decay on the sampled rows; grad is [k, D] row-major. */
  private applySgd(classes: Int32Array, grad: Float32Array, sgd: SgdSettings): void {
    const { dim, rowsPerChunk } = this.weights;
    const { lr, momentum: mu, weightDecay: wd } = sgd;
    for (let j = 0; j < classes.length; j++) {
      const c = classes[j];
      const ch = Math.floor(c / rowsPerChunk);
      const off = (c - ch * rowsPerChunk) * dim;
      const w = this.weights.chunks[ch].subarray(off, off + dim);
      const v = this.momentum.chunks[ch].subarray(off, off + dim);
      const g = grad.subarray(j * dim, (j + 1) * dim);
      for (let d = 0; d < dim; d++) {
        const wOld = w[d];
        const vNew = mu * v[d] + (g[d] + wd * wOld);
        v[d] = vNew;
        w[d] = wOld - lr * vNew;
      }
    }
  }

  loss(input: HeadInput): tf.Scalar {
    const { embeddings, labels } = input;
    const wsub = this.wsub;
    const sample = this.sample;
    if (!wsub || !sample || !this.sampleLabels) throw new Error('head pfc: loss() before prepare(labels)');
    if (!sameLabels(labels, this.sampleLabels)) throw new Error('head pfc: loss() labels differ from the ones given to prepare()');
    assertEmbeddings(embeddings, labels, this.embeddingSize, 'pfc');
    return tf.tidy(() => {
      const target = tf.tensor1d(sample.targets, 'int32');
      const cos = cosineToCentres(embeddings, wsub);
      if (sample.classes.length >= 2) this.diag.set(cosineStats(cos, target));
      return marginSoftmaxLoss(cos, target, this.margin);
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
    if (!wsub || !sample) throw new Error('head pfc: afterStep() before prepare(labels)');
    const g = stepGrads[0];
    if (stepGrads.length !== 1 || !g || g.shape[0] !== wsub.shape[0] || g.shape[1] !== wsub.shape[1])
      throw new Error(`head pfc: afterStep expects one gradient of shape [${wsub.shape.join(', ')}]`);
    this.applySgd(sample.classes, g.dataSync() as Float32Array, sgd);
    this.releaseStep();
  }

  /** Classes and targets of the last prepare() (copies), or null before the first / after setState. */
  lastSample(): PartialFcSample | null {
    return this.sample ? { classes: this.sample.classes.slice(), targets: this.sample.targets.slice() } : null;
  }

  /** positiveCos / hardestNegCos over the sampled centres, and sampledClasses of the last prepare. */
  diagnostics(): Record<string, number> {
    const out = this.diag.read();
    if (this.sample) out.sampledClasses = this.sample.classes.length;
    return out;
  }

  /** W and momentum, both in JS memory (the per-step Wsub is transient). */
  stateBytes(): number {
    return 2 * this.numClasses * this.embeddingSize * 4;
  }

  /**
   * W and momentum as class-major [N, D] streams split into chunks `W.0`, `W.1`, ... and `momentum.0`,
   * ...; these are the LIVE arrays (8 GB at 2M classes cannot be copied casually): serialise them before
   * the next afterStep(). json holds the sizes and the sampler's stream position.
   */
  getState(): HeadState {
    const arrays: Record<string, Float32Array> = {};
    this.weights.chunks.forEach((c, i) => (arrays[`W.${i}`] = c));
    this.momentum.chunks.forEach((c, i) => (arrays[`momentum.${i}`] = c));
    return {
      arrays,
      json: {
        kind: this.kind,
        numClasses: this.numClasses,
        embeddingSize: this.embeddingSize,
        sampleRate: this.sampleRate,
        chunks: this.weights.chunks.length,
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
    for (const name of ['W', 'momentum'] as const) {
      const parts: Float32Array[] = [];
      for (let i = 0; s.arrays[`${name}.${i}`] !== undefined; i++) {
        const p = s.arrays[`${name}.${i}`];
        if (!(p instanceof Float32Array)) throw new AttfcError(`head pfc state: ${name}.${i} must be float32`);
        parts.push(p);
      }
      const table = name === 'W' ? this.weights : this.momentum;
      const got = parts.reduce((a, p) => a + p.length, 0);
      if (!table.assignFlat(parts))
        throw new AttfcError(`head pfc state: ${name}.* hold ${got} values, expected ${n * d} (${n} classes x embedding ${d})`);
    }
    const sampler = s.json.sampler;
    if (Array.isArray(sampler)) this.sampler.setState(sampler.map((x) => (x === null ? NaN : Number(x))));
    this.releaseStep();
    this.sample = null;
  }

  dispose(): void {
    this.releaseStep();
    this.diag.dispose();
  }

  /** Frees Wsub; the sample stays readable for logs until the next prepare(). */
  private releaseStep(): void {
    this.wsub?.dispose();
    this.wsub = null;
    this.sampleLabels = null;
  }
}

/** Index of the first element >= x in an ascending array. */
function lowerBound(a: Int32Array, x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function sameLabels(a: Int32Array, b: Int32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
