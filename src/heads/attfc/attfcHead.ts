// The AttFC head (Zheng et al. 2025): no trainable head parameters. Each sample's positive centre is a
// GCC built by attention from K-1 other images of its identity (embedded by the class encoder f_k);
// the negatives are the DCC, a ring buffer of earlier batches' GCCs. The method: docs/method.md.
//
// Per step, as the trainer drives it:
//   outside the tape:  classEncoder.update(); keys = classEncoder.embed(keyImages)
//   inside the tape:   loss({ embeddings: f_q(x), labels, keyEmbeddings: keys })
//   after the update:  afterStep() enqueues the step's GCCs (after its loss: never its own negatives)
//
// Sharded (--shard-head, a distributed run): each rank holds a contiguous range of the DCC's slots (a
// ring of its own, kept in step with the global ring pointer: sharded/shardMath.ts) and writes only the
// global batch's GCCs that land there; every rank scores the whole batch's gathered queries against
// its slots, and the per-rank log-sum-exps meet in the sharded softmax (sharded/shardedSoftmax.ts).
import * as tf from '@tensorflow/tfjs-core';
import { AttfcError } from '../../errors.js';
import { ARCFACE, l2Normalize, marginTargetLogit, validateMargin, type MarginOptions } from '../margin.js';
import type { Head, HeadInput, HeadState, SgdSettings } from '../types.js';
import { assertEmbeddings, assertHeadSizes, assertLabelsInRange } from '../shared.js';
import { ATTENTION_MODES, attentionStats, generateClassCentres, type AttentionMode } from './attention.js';
import { DEFAULT_CHUNK_SLOTS, DynamicClassContainer } from './dcc.js';
import { dccSoftmax, type DccSoftmaxResult, type DccSoftmaxTimings } from './dccSoftmax.js';
import { DEFAULT_DEVICE_BUDGET_BYTES, DccDeviceChunks, type ChunkPlacement } from './deviceChunks.js';
import { MAX_EXP_SCALE } from './fastExp.js';
import { DeviceClassContainer } from './deviceDcc.js';
import { deviceDccSoftmax } from './deviceSoftmax.js';
import { currentTorchBackend } from '../../engine/torch/rowTable.js';
import type { TorchBackend } from '../../engine/torch/backend.js';
import { rowShare, type HeadCollectives } from '../collectives.js';
import { sameLabels } from '../shared.js';
import { localRing, ownedRingRows } from '../sharded/shardMath.js';
import { float32, headShard, int32, sliceRows, type TableShard } from '../sharded/shardState.js';
import { gatherBatch, shardedCrossEntropy } from '../sharded/shardedSoftmax.js';

export interface AttFcHeadOptions {
  numClasses: number;
  embeddingSize: number;
  /** Batch size B; the DCC size is a multiple of it. */
  batchSize: number;
  /** Images per identity per sample, K >= 2 (1 query + K-1 keys); default 3. K = 2 is DCQ. */
  sampleNum?: number;
  /** Absolute DCC size S (a positive multiple of B); overrides queueRatio. */
  queueSize?: number;
  /** S = floor(queueRatio * N / B) * B; default 0.3. */
  queueRatio?: number;
  /** Default 'softmax'. */
  attention?: AttentionMode;
  /** Attention softmax(cos / T); default 1. */
  temperature?: number;
  /** Mask DCC slots of the sample's own identity; default true. */
  masking?: boolean;
  /** Margin on the positive column; default ARCFACE. Its s also scales the negatives. */
  margin?: MarginOptions;
  seed: number;
  /**
   * DCC slots per chunk of the chunked softmax; default 4096 in JS memory (longer chunks slow the P.K
   * product: its contraction outgrows the cache), 65536 on backend torch.
   */
  chunkSlots?: number;
  /**
   * Device bytes for DCC chunks kept between steps (see deviceChunks.ts): all of S*D*4 keeps every
   * chunk resident (no uploads), twice that also keeps XNNPACK's packed copies (fastest); default 1.5 GiB.
   */
  deviceBudgetBytes?: number;
  /**
   * Data-parallel processes: loss() sees this process's rows, and the DCC of every rank receives every
   * rank's GCCs in global-batch order (so it stays identical to one process's).
   */
  collectives?: HeadCollectives;
  /** With collectives of more than one rank: hold only this rank's DCC slots (model parallel). */
  shard?: boolean;
}

/** The paper's DCC size: floor(ratio * N / B) * B (may be 0 for tiny N; the head rejects that). */
export function defaultQueueSize(numClasses: number, batchSize: number, ratio = 0.3): number {
  return Math.floor((ratio * numClasses) / batchSize) * batchSize;
}

/** Resolves and checks S from the options; AttfcError naming the values when it is unusable. */
export function resolveQueueSize(opts: Pick<AttFcHeadOptions, 'numClasses' | 'batchSize' | 'queueSize' | 'queueRatio'>): number {
  const B = opts.batchSize;
  if (opts.queueSize !== undefined) {
    const S = opts.queueSize;
    if (!(Number.isInteger(S) && S > 0 && S % B === 0))
      throw new AttfcError(`attfc: queueSize ${S} must be a positive multiple of the batch size ${B}`);
    return S;
  }
  const ratio = opts.queueRatio ?? 0.3;
  if (!(ratio > 0)) throw new AttfcError(`attfc: queueRatio must be > 0 (got ${ratio})`);
  const S = defaultQueueSize(opts.numClasses, B, ratio);
  if (S <= 0)
    throw new AttfcError(
      `attfc: queue size floor(${ratio} * ${opts.numClasses} classes / batch ${B}) * ${B} = 0 is not a positive multiple of the batch size; set queueSize or a larger queueRatio`,
    );
  return S;
}

interface PendingBatch {
  centres: Float32Array;
  labels: Int32Array;
}

export class AttFcHead implements Head {
  readonly kind = 'attfc' as const;
  readonly numClasses: number;
  readonly embeddingSize: number;
  readonly batchSize: number;
  /** S. */
  readonly queueSize: number;
  /** K: 1 query + K-1 keys per sample. */
  readonly sampleNum: number;
  readonly attention: AttentionMode;
  readonly temperature: number;
  readonly masking: boolean;
  readonly margin: MarginOptions;
  /**
   * The DCC (read-only use outside the head): in libtorch memory on backend torch, else in JS memory
   * with per-chunk device copies.
   */
  readonly queue: DynamicClassContainer | DeviceClassContainer;
  private readonly device: DccDeviceChunks | null;
  private readonly torch: TorchBackend | null;
  private pending: PendingBatch[] = [];
  private diag: Record<string, number> = {};
  private readonly collectives: HeadCollectives | undefined;
  readonly sharding?: TableShard;
  /** Sharded: the global ring's pointer and fill (`queue` holds this rank's slots as a ring of its own). */
  private readonly ring = { pointer: 0, filled: 0 };
  /** Sharded: the global batch's labels from prepare(). */
  private batchLabels: Int32Array | null = null;

  constructor(opts: AttFcHeadOptions) {
    const { numClasses, embeddingSize, batchSize } = opts;
    assertHeadSizes(numClasses, embeddingSize, 'attfc');
    if (!(Number.isInteger(batchSize) && batchSize >= 1))
      throw new AttfcError(`attfc: batchSize must be a whole number >= 1 (got ${batchSize})`);
    const K = opts.sampleNum ?? 3;
    if (!(Number.isInteger(K) && K >= 2)) throw new AttfcError(`attfc: sampleNum must be a whole number >= 2 (got ${K})`);
    const attention = opts.attention ?? 'softmax';
    if (!ATTENTION_MODES.includes(attention))
      throw new AttfcError(`attfc: attention must be one of ${ATTENTION_MODES.join(', ')} (got ${String(attention)})`);
    const temperature = opts.temperature ?? 1;
    if (!(temperature > 0)) throw new AttfcError(`attfc: temperature must be > 0 (got ${temperature})`);
    this.margin = opts.margin ?? ARCFACE;
    validateMargin(this.margin);
    if (this.margin.s > MAX_EXP_SCALE) throw new AttfcError(`attfc: margin scale s ${this.margin.s} is above the supported ${MAX_EXP_SCALE}`);
    this.numClasses = numClasses;
    this.embeddingSize = embeddingSize;
    this.batchSize = batchSize;
    this.sampleNum = K;
    this.attention = attention;
    this.temperature = temperature;
    this.masking = opts.masking ?? true;
    this.queueSize = resolveQueueSize(opts);
    this.collectives = opts.collectives;
    this.torch = currentTorchBackend();
    this.sharding = headShard(opts, this.queueSize, embeddingSize, 'attfc', 'DCC slots');
    const [firstSlot, endSlot] = this.sharding?.range ?? [0, this.queueSize];
    const dccOptions = { size: endSlot - firstSlot, firstSlot, dim: embeddingSize, chunkSlots: opts.chunkSlots, seed: opts.seed };
    if (this.torch) {
      this.queue = new DeviceClassContainer(this.torch, dccOptions);
      this.device = null;
    } else {
      const queue = new DynamicClassContainer({ ...dccOptions, chunkSlots: opts.chunkSlots ?? DEFAULT_CHUNK_SLOTS });
      this.queue = queue;
      this.device = new DccDeviceChunks(queue, opts.deviceBudgetBytes ?? DEFAULT_DEVICE_BUDGET_BYTES);
    }
  }

  /** Where the last loss() spent its DCC time (uploads, cosine products, JS passes, gradient products). */
  lastDccTimings: DccSoftmaxTimings | null = null;

  prepare(labels: Int32Array): void {
    if (this.sharding) this.batchLabels = labels.slice();
  }

  /**
   * Mean ArcFace cross-entropy of [q.c | q.Q_1..q.Q_S] with target column 0. Needs keyEmbeddings
   * [B*(K-1), D]. Only `embeddings` gets gradients. The batch's GCCs are queued for afterStep().
   */
  loss(input: HeadInput): tf.Scalar {
    const { embeddings, labels, keyEmbeddings, keyQuality } = input;
    const B = labels.length;
    const D = this.embeddingSize;
    const keys = this.sampleNum - 1;
    assertEmbeddings(embeddings, labels, D, 'attfc');
    if (!keyEmbeddings) throw new Error('head attfc: loss() needs keyEmbeddings (f_k of the K-1 key images per sample)');
    if (keyEmbeddings.shape[0] !== B * keys || keyEmbeddings.shape[1] !== D)
      throw new Error(`head attfc: keyEmbeddings are [${keyEmbeddings.shape}], expected [${B * keys}, ${D}] (${keys} keys per sample)`);
    if (B > this.queueSize) throw new Error(`head attfc: batch of ${B} exceeds the DCC size ${this.queueSize}`);
    assertLabelsInRange(labels, this.numClasses, 'attfc');
    const needGradient = tf.engine().isTapeOn();

    return tf.tidy(() => {
      const qn = l2Normalize(embeddings, 1);
      const queries = qn.dataSync() as Float32Array;
      const gcc = generateClassCentres(queries, keyEmbeddings.dataSync() as Float32Array, keys, D, {
        mode: this.attention,
        temperature: this.temperature,
      });
      const cosPositive = tf.sum(tf.mul(qn, tf.tensor2d(gcc.centres, [B, D])), 1) as tf.Tensor1D;
      const positive = marginTargetLogit(cosPositive, this.margin);
      if (this.sharding) {
        const sharded = this.shardedLoss(qn, labels, positive, cosPositive, gcc.weights, keyQuality, needGradient, this.sharding);
        this.pending.push({ centres: gcc.centres, labels: labels.slice() });
        return sharded;
      }

      const dcc = this.dccLogSumExp(qn, queries, labels, needGradient, B + this.pendingRows());
      const logSumExp = tf.logSumExp(tf.stack([positive, dcc.logSumExp], 1), 1);
      const loss = tf.mul(tf.mean(tf.sub(logSumExp, positive)), rowShare(this.collectives, B)) as tf.Scalar;

      this.pending.push({ centres: gcc.centres, labels: labels.slice() });
      this.recordDiagnostics(loss.dataSync()[0] / rowShare(this.collectives, B), cosPositive, dcc.result, gcc.weights, B, keyQuality);
      this.lastDccTimings = dcc.result.timings;
      return loss;
    });
  }

  /**
   * A_i = log sum_j exp(s * zhat_ij) over this process's DCC for the unit queries `qn` [n, D] (values
   * `queries`), with its gradient computed in the same pass. `rowsWrittenNext`: slots the coming
   * enqueue writes into this DCC (a hint for which chunks to keep on the device).
   */
  private dccLogSumExp(
    qn: tf.Tensor2D,
    queries: Float32Array,
    labels: Int32Array,
    needGradient: boolean,
    rowsWrittenNext: number,
  ): { logSumExp: tf.Tensor1D; result: Omit<DccSoftmaxResult, 'gradient'> } {
    const n = labels.length;
    const D = this.embeddingSize;
    const dcc: { result?: Omit<DccSoftmaxResult, 'gradient'> } = {};
    const negatives = tf.customGrad((q, save) => {
      const settings = { labels, scale: this.margin.s, masking: this.masking, needGradient };
      const queue = this.queue;
      if (queue instanceof DeviceClassContainer) {
        const r = deviceDccSoftmax(this.torch!, queue, { ...settings, queries: q as tf.Tensor2D });
        dcc.result = r;
        if (r.gradient) (save as tf.GradSaveFunc)([r.gradient]);
        return {
          value: tf.tensor1d(Float32Array.from(r.logSumExp)),
          gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
            if (!saved.length) throw new Error('head attfc: gradient requested for a loss computed without a gradient tape');
            return tf.mul(tf.reshape(dy as tf.Tensor, [n, 1]), saved[0]);
          },
        };
      }
      // in JS memory: the input tensor's values are `queries`
      const r = dccSoftmax(queue, this.device!, { ...settings, queries, hotChunks: this.chunksWrittenNext(queue, rowsWrittenNext) });
      dcc.result = r;
      return {
        value: tf.tensor1d(Float32Array.from(r.logSumExp)),
        gradFunc: (dy: tf.Tensor | tf.Tensor[]) => {
          if (!r.gradient) throw new Error('head attfc: gradient requested for a loss computed without a gradient tape');
          return tf.mul(tf.reshape(dy as tf.Tensor, [n, 1]), tf.tensor2d(r.gradient, [n, D]));
        },
      };
    }) as unknown as (q: tf.Tensor2D) => tf.Tensor1D;
    const logSumExp = negatives(qn);
    return { logSumExp, result: dcc.result! };
  }

  /**
   * The sharded loss (inside loss()'s tidy): this rank's DCC slots score every row of the gathered
   * batch; a row's positive column joins the part of its own rank, whose loss() computed it.
   */
  private shardedLoss(
    qn: tf.Tensor2D,
    labels: Int32Array,
    positive: tf.Tensor1D,
    cosPositive: tf.Tensor1D,
    attention: Float32Array,
    keyQuality: Float32Array | undefined,
    needGradient: boolean,
    shard: TableShard,
  ): tf.Scalar {
    const c = shard.collectives;
    const all = this.batchLabels;
    const [start, end] = c.rows;
    if (!all || !sameLabels(labels, all.subarray(start, end))) throw new Error('head attfc: loss() labels are not the rows of the batch given to prepare()');
    const Bg = all.length;
    const qAll = gatherBatch(c, qn);
    // a bound on the own slots the coming enqueues write (a device-placement hint only)
    const dcc = this.dccLogSumExp(qAll, qAll.dataSync() as Float32Array, all, needGradient, Math.min(shard.ownRows, Bg * (this.pending.length + 1)));
    const holdsTarget = Uint8Array.from({ length: Bg }, (_, i) => (i >= start && i < end ? 1 : 0));
    const target = tf.pad(positive, [[start, Bg - end]]) as tf.Tensor1D;
    const withPositive = tf.logSumExp(tf.stack([target, dcc.logSumExp], 1), 1);
    const partial = tf.where(tf.tensor1d(holdsTarget, 'bool'), withPositive, dcc.logSumExp) as tf.Tensor1D;
    const hardest = Float64Array.from(dcc.result.hardestNegative, (h) => (Number.isNaN(h) ? -Infinity : h));
    const cos = cosPositive.dataSync();
    let positiveSum = 0;
    for (let i = 0; i < cos.length; i++) positiveSum += cos[i];
    const r = shardedCrossEntropy(c, { partial, target, holdsTarget, max: [hardest], sum: [Float64Array.of(positiveSum, dcc.result.maskedCount)] });
    const [reducedHardest] = r.max;
    const [[positiveTotal, maskedTotal]] = r.sum;
    let hardestSum = 0;
    let rows = 0;
    for (const h of reducedHardest) {
      if (h === -Infinity) continue;
      hardestSum += h;
      rows++;
    }
    this.diag = {
      loss: r.batchLoss,
      positiveCos: positiveTotal / Bg,
      hardestNegCos: rows ? hardestSum / rows : NaN,
      ...attentionStats(attention, this.sampleNum - 1, keyQuality),
      maskedFraction: maskedTotal / (Bg * this.queueSize),
    };
    this.lastDccTimings = dcc.result.timings;
    return r.loss;
  }

  trainableVariables(): tf.Variable[] {
    return [];
  }

  stepVariables(): tf.Variable[] {
    return [];
  }

  /**
   * Enqueues the GCCs of every loss() since the last afterStep(), in order (with collectives: every
   * rank's, in rank order; sharded: those landing in this rank's slots).
   */
  afterStep(_stepGrads: tf.Tensor[], _sgd: SgdSettings): void {
    const all = this.collectives;
    for (const p of this.pending) {
      if (this.sharding) this.enqueueOwn(all!.allGather(p.centres), all!.allGather(p.labels), this.sharding);
      else if (all) this.queue.enqueue(all.allGather(p.centres), all.allGather(p.labels));
      else this.queue.enqueue(p.centres, p.labels);
    }
    this.pending = [];
  }

  /** Writes the rows of a global enqueue that land in this rank's slots into its own ring, and advances the global one. */
  private enqueueOwn(centres: Float32Array, labels: Int32Array, shard: TableShard): void {
    const D = this.embeddingSize;
    const S = this.queueSize;
    const { pointer, filled } = this.ring;
    const expected = localRing(pointer, filled, shard.range);
    if (this.queue.pointer !== expected.pointer || this.queue.filled !== expected.filled)
      throw new Error(`head attfc: the DCC shard's ring (pointer ${this.queue.pointer}, fill ${this.queue.filled}) is out of step with the global ring's (${pointer}, ${filled})`);
    const runs = ownedRingRows(pointer, labels.length, S, shard.range);
    const count = runs.reduce((a, [, n]) => a + n, 0);
    if (count > 0) {
      const v = new Float32Array(count * D);
      const l = new Int32Array(count);
      let at = 0;
      for (const [row, n] of runs) {
        v.set(centres.subarray(row * D, (row + n) * D), at * D);
        l.set(labels.subarray(row, row + n), at);
        at += n;
      }
      this.queue.enqueue(v, l);
    }
    this.ring.pointer = (pointer + labels.length) % S;
    this.ring.filled = Math.min(S, filled + labels.length);
  }

  /**
   * From the last loss(): loss, positiveCos (mean q.c), hardestNegCos (mean over samples of the largest
   * unmasked DCC cosine), attentionMax / attentionEntropy (and attentionLowQuality / HighQuality with
   * key qualities), maskedFraction (masked pairs / (B*S)); dccFill (share of slots holding GCCs) is current.
   */
  diagnostics(): Record<string, number> {
    return { ...this.diag, ...this.stateDiagnostics() };
  }

  /** dccFill: the share of DCC slots holding GCCs. */
  stateDiagnostics(): Record<string, number> {
    return { dccFill: (this.sharding ? this.ring.filled : this.queue.filled) / this.queueSize };
  }

  /** Bytes of the DCC (JS layouts or the libtorch table, labels, index) plus its resident device chunks. */
  stateBytes(): number {
    return this.queue.bytes() + (this.device?.residentBytes() ?? 0);
  }

  /**
   * The DCC as slot-major [S, D] chunks `dcc.0`, `dcc.1`, ... and `dccLabels` [S]: LIVE arrays,
   * serialise them before the next afterStep(). json: sizes, pointer, fill, RNG state. Sharded: a
   * collective; the whole DCC on rank 0 only.
   */
  getState(): HeadState {
    const shard = this.sharding;
    // a shard sends its slots piece by piece, straight from its DCC
    const s = shard
      ? {
          vectors: shard.gather((start, n) => this.queue.readSlots(start, n), float32) ?? [],
          labels: shard.gather([this.queue.labels], int32, { dim: 1, chunkValues: this.queueSize })?.[0],
          ...this.ring,
          rng: this.queue.rngState(),
        }
      : this.queue.getState();
    const arrays: Record<string, Float32Array | Int32Array> = s.labels ? { dccLabels: s.labels } : {};
    s.vectors.forEach((v, i) => (arrays[`dcc.${i}`] = v));
    return {
      arrays,
      json: {
        kind: this.kind,
        numClasses: this.numClasses,
        embeddingSize: this.embeddingSize,
        queueSize: this.queueSize,
        chunks: s.vectors.length,
        layout: 'slot-major [S, D] row-major, split into chunks',
        pointer: s.pointer,
        filled: s.filled,
        rng: s.rng,
      },
    };
  }

  /** How each DCC chunk is held on the device ('packed' | 'resident' | 'streamed'); empty for a DCC in libtorch memory. */
  chunkPlacements(): ChunkPlacement[] {
    const device = this.device;
    return device ? Array.from({ length: this.queue.numChunks }, (_, k) => device.placementOf(k)) : [];
  }

  /** DCC chunks currently kept on the device between steps (each one tensor); 0 for a DCC in libtorch memory. */
  residentChunks(): number {
    return this.device?.residentCount() ?? 0;
  }

  /** Restores the DCC (any chunking of the [S, D] stream); drops un-enqueued GCCs and device copies. */
  setState(s: HeadState): void {
    const what = 'head attfc state';
    if (s.json.embeddingSize !== this.embeddingSize || s.json.queueSize !== this.queueSize)
      throw new AttfcError(
        `${what}: queueSize ${String(s.json.queueSize)} x embedding ${String(s.json.embeddingSize)}, expected ${this.queueSize} x ${this.embeddingSize}`,
      );
    const vectors: Float32Array[] = [];
    for (let i = 0; s.arrays[`dcc.${i}`] !== undefined; i++) {
      const v = s.arrays[`dcc.${i}`];
      if (!(v instanceof Float32Array)) throw new AttfcError(`${what}: dcc.${i} must be float32`);
      vectors.push(v);
    }
    const labels = s.arrays.dccLabels;
    if (!(labels instanceof Int32Array)) throw new AttfcError(`${what}: dccLabels must be int32`);
    const rng = Array.isArray(s.json.rng) ? (s.json.rng as unknown[]).map((x) => (x === null ? NaN : Number(x))) : undefined;
    const pointer = Number(s.json.pointer);
    const filled = Number(s.json.filled);
    if (this.sharding) {
      // this rank's slots of the whole DCC, as a ring of their own
      const shard = this.sharding;
      const S = this.queueSize;
      if (!(Number.isInteger(pointer) && pointer >= 0 && pointer < S)) throw new AttfcError(`${what}: pointer ${pointer} is not a slot in 0..${S - 1}`);
      if (!(Number.isInteger(filled) && filled >= 0 && filled <= S)) throw new AttfcError(`${what}: filled ${filled} is not in 0..${S}`);
      if (labels.length !== S) throw new AttfcError(`${what}: ${labels.length} labels, expected ${S}`);
      const own = localRing(pointer, filled, shard.range);
      const ownVectors = shard.slice(vectors, float32, what);
      this.queue.setState({ vectors: [ownVectors], labels: sliceRows([labels], 1, shard.range, int32), ...own, rng }, what);
      Object.assign(this.ring, { pointer, filled });
    } else this.queue.setState({ vectors, labels, pointer, filled, rng }, what);
    this.device?.invalidateAll();
    this.pending = [];
  }

  dispose(): void {
    this.device?.dispose();
    if (this.queue instanceof DeviceClassContainer) this.queue.dispose();
    this.pending = [];
  }

  /** Rows of the GCCs waiting for afterStep(). */
  private pendingRows(): number {
    return this.pending.reduce((a, p) => a + p.labels.length, 0);
  }

  /** Chunks the next afterStep() overwrites when it writes `rows` slots of q. */
  private chunksWrittenNext(q: DynamicClassContainer, rows: number): Set<number> {
    const hot = new Set<number>();
    let slot = q.pointer;
    for (let left = Math.min(rows, q.size); left > 0; ) {
      const k = q.chunkOf(slot);
      hot.add(k);
      const n = Math.min(left, q.chunkStart(k) + q.chunkLength(k) - slot);
      left -= n;
      slot = (slot + n) % q.size;
    }
    return hot;
  }

  /** `loss`: the mean over this process's rows (what the trainer averages over the ranks by rows). */
  private recordDiagnostics(
    loss: number,
    cosPositive: tf.Tensor1D,
    dcc: Omit<DccSoftmaxResult, 'gradient'>,
    weights: Float32Array,
    B: number,
    keyQuality?: Float32Array,
  ): void {
    const cos = cosPositive.dataSync();
    let positive = 0;
    for (let i = 0; i < B; i++) positive += cos[i];
    let hardest = 0;
    let rows = 0;
    for (let i = 0; i < B; i++) {
      if (Number.isNaN(dcc.hardestNegative[i])) continue;
      hardest += dcc.hardestNegative[i];
      rows++;
    }
    this.diag = {
      loss,
      positiveCos: positive / B,
      hardestNegCos: rows ? hardest / rows : NaN,
      ...attentionStats(weights, this.sampleNum - 1, keyQuality),
      maskedFraction: dcc.maskedCount / (B * this.queueSize),
    };
  }
}
