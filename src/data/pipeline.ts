// Training input pipeline: the main thread samples index lists (IdentitySampler), worker threads
// decode + augment whole batches, and a FIFO of prefetched batches hides decoding behind training.
// Batch bytes depend only on (seed, step), never on worker count or scheduling.
import os from 'node:os';
import type { Worker } from 'node:worker_threads';
import { spawnWorker } from '../util/worker.js';
import { performance } from 'node:perf_hooks';
import { AttfcError } from '../errors.js';
import { openDataset, type FaceDataset } from './dataset.js';
import { IdentitySampler, type SamplerState } from './sampler.js';
import type { WorkerConfig, WorkerJob, WorkerReply, WorkerRequest } from './pipelineWorker.js';

export interface DataPipelineOptions {
  /** Dataset path, as accepted by openDataset (each worker opens it itself). */
  dataset: string;
  batchSize: number;
  /** K: one query + K-1 key images of the same identity per sample (1 = no keys). */
  sampleNum: number;
  /** Side of the square network input; images are resized when they differ. */
  inputSize: number;
  seed: number;
  /** Decode threads (default: number of CPUs). */
  workers?: number;
  /** Batches made ahead of consumption (default: workers + 1, between 2 and 4). */
  prefetch?: number;
  /** Random horizontal flip (default true). */
  flip?: boolean;
  /** Largest tolerated share of unusable images (default 0.01), each counted once, checked once 100 images were seen. */
  maxBadShare?: number;
  /** Receives one message per replaced image (default: console.warn). */
  onWarning?: (message: string) => void;
  /**
   * Data-parallel ranks: the rows [start, end) of every batch this pipeline decodes. The sampler still
   * draws the whole batch (every rank draws the same), so a rank's rows, their keys and their flips are
   * exactly those one process would make for those rows. Default: the whole batch.
   */
  rows?: [number, number];
}

/** One training batch, NHWC float32 normalised to [-1, 1]. */
export interface Batch {
  /** B x S x S x 3 query images (with `rows`: only those rows, B = end - start). */
  images: Float32Array;
  /** B*(K-1) x S x S x 3 key images; key j of sample i is image i*(K-1)+j. Empty when K = 1. */
  keys: Float32Array;
  /** Labels of the rows in `images`. */
  labels: Int32Array;
  /** Labels of the whole batch the rows belong to (equal to `labels` without `rows`). */
  batchLabels: Int32Array;
  /** Dataset indices actually used (a replaced bad image shows its replacement). */
  queryIndices: Int32Array;
  keyIndices: Int32Array;
  /** Epoch in which the batch starts. */
  epoch: number;
  /** 0-based batch counter since the start of training (survives getState/setState). */
  step: number;
  /** dataset.quality() of each key image (NaN where unknown); absent when no key has a quality. */
  keyQuality?: Float32Array;
}

/** Position of the next batch to be consumed; JSON-serialisable. */
export interface PipelineState {
  sampler: SamplerState;
  step: number;
}

export interface PipelineStats {
  /** Total time next() spent waiting for a batch that was not ready. */
  waitMs: number;
  /** Total worker time spent reading, decoding and augmenting the consumed batches. */
  decodeMs: number;
  /** Distinct images that could not be used (and were replaced) in the consumed batches, each counted once. */
  badImages: number;
  /** Images (queries + keys) in the consumed batches. */
  images: number;
  /** Distinct images in the consumed batches (the denominator of maxBadShare). */
  distinctImages: number;
}

/**
 * maxBadShare is enforced once this many images were drawn and this many distinct ones seen (or the
 * whole set, if smaller), so that one early bad image does not abort a run.
 */
const MIN_IMAGES_FOR_BAD_SHARE = 100;

interface Prefetched {
  step: number;
  samplerBefore: SamplerState;
  result: Promise<{ batch: Batch; reply: Extract<WorkerReply, { ok: true }> }>;
}

interface PendingJob {
  resolve: (reply: Extract<WorkerReply, { ok: true }>) => void;
  reject: (error: Error) => void;
}

/** One decode thread and the jobs it owes us. */
class DecodeWorker {
  private readonly worker: Worker;
  private readonly pending = new Map<number, PendingJob>();
  private failure: Error | undefined;
  private readonly exited: Promise<void>;

  constructor(config: WorkerConfig) {
    this.worker = spawnDecodeWorker(config);
    this.worker.unref();
    this.worker.on('message', (reply: WorkerReply) => this.settle(reply));
    this.worker.on('error', (e) => this.fail(e instanceof Error ? e : new Error(String(e))));
    this.exited = new Promise((resolve) => {
      this.worker.on('exit', (code) => {
        this.fail(new Error(`data pipeline worker exited (code ${code})`));
        resolve();
      });
    });
  }

  get load(): number {
    return this.pending.size;
  }

  run(job: WorkerJob): Promise<Extract<WorkerReply, { ok: true }>> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.pending.set(job.id, { resolve, reject });
      // keep the process alive only while we wait for this worker
      this.worker.ref();
      this.worker.postMessage(job satisfies WorkerRequest);
    });
  }

  /** Asks the worker to close its dataset files and exit; terminates it if it does not. */
  async close(): Promise<void> {
    this.fail(new Error('data pipeline closed'));
    this.worker.ref(); // the caller awaits the exit
    this.worker.postMessage({ type: 'close' } satisfies WorkerRequest);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), 2000)));
    const outcome = await Promise.race([this.exited, timeout]);
    clearTimeout(timer);
    if (outcome === 'timeout') await this.worker.terminate();
  }

  private settle(reply: WorkerReply): void {
    const job = this.pending.get(reply.id);
    if (!job) return;
    this.pending.delete(reply.id);
    if (this.pending.size === 0) this.worker.unref();
    if (reply.ok) job.resolve(reply);
    else job.reject(reply.userError ? new AttfcError(reply.message) : new Error(reply.message));
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const job of this.pending.values()) job.reject(error);
    this.pending.clear();
    this.worker.unref();
  }
}

function spawnDecodeWorker(config: WorkerConfig): Worker {
  return spawnWorker(new URL('./pipelineWorker', import.meta.url), import.meta.url.endsWith('.ts'), config);
}

export class DataPipeline {
  /** The dataset as opened by the main thread (identity count, describe(), ...). */
  readonly dataset: FaceDataset;
  readonly batchSize: number;
  readonly sampleNum: number;
  readonly inputSize: number;
  /** The rows of each batch this pipeline decodes. */
  readonly rows: [number, number];
  private readonly sampler: IdentitySampler;
  private readonly workers: DecodeWorker[];
  private readonly prefetch: number;
  private readonly maxBadShare: number;
  private readonly onWarning: (message: string) => void;
  private queue: Prefetched[] = [];
  /** The batch next() handed on and has not finished (it failed, if next() threw): getState() points at it. */
  private current: Prefetched | null = null;
  private nextStep = 0;
  /** Which images the consumed batches held, and which of them could not be used (each counted once). */
  private readonly seen: Uint8Array;
  private readonly badSeen = new Set<number>();
  private nextJobId = 0;
  private closed = false;
  private readonly totals: PipelineStats = { waitMs: 0, decodeMs: 0, badImages: 0, images: 0, distinctImages: 0 };

  constructor(options: DataPipelineOptions) {
    const { batchSize, sampleNum, inputSize } = options;
    for (const [name, value] of Object.entries({ batchSize, sampleNum, inputSize })) {
      if (!Number.isInteger(value) || value < 1) throw new AttfcError(`data pipeline: ${name} must be an integer >= 1, got ${value}`);
    }
    if (!Number.isInteger(options.seed)) throw new AttfcError(`data pipeline: seed must be an integer, got ${options.seed}`);
    const workers = options.workers ?? os.cpus().length;
    if (!Number.isInteger(workers) || workers < 1) throw new AttfcError(`data pipeline: workers must be an integer >= 1, got ${workers}`);
    this.prefetch = options.prefetch ?? Math.min(4, Math.max(2, workers + 1));
    if (!Number.isInteger(this.prefetch) || this.prefetch < 1) {
      throw new AttfcError(`data pipeline: prefetch must be an integer >= 1, got ${options.prefetch}`);
    }
    this.maxBadShare = options.maxBadShare ?? 0.01;
    if (!(this.maxBadShare >= 0 && this.maxBadShare <= 1)) {
      throw new AttfcError(`data pipeline: maxBadShare must be between 0 and 1, got ${options.maxBadShare}`);
    }
    this.onWarning = options.onWarning ?? ((message) => console.warn(`warning: ${message}`));
    this.batchSize = batchSize;
    this.sampleNum = sampleNum;
    this.inputSize = inputSize;
    this.rows = options.rows ?? [0, batchSize];
    const [start, end] = this.rows;
    if (!(Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start < end && end <= batchSize))
      throw new AttfcError(`data pipeline: rows [${start}, ${end}) are not a non-empty part of a batch of ${batchSize}`);
    this.dataset = openDataset(options.dataset);
    this.seen = new Uint8Array(this.dataset.numImages);
    this.sampler = new IdentitySampler(this.dataset, { sampleNum, seed: options.seed });
    const config: WorkerConfig = { datasetPath: options.dataset, inputSize, seed: options.seed >>> 0, flip: options.flip ?? true };
    this.workers = Array.from({ length: workers }, () => new DecodeWorker(config));
    // Start prefetching after the caller had a chance to setState() (resume) in the same tick.
    setImmediate(() => this.fill());
  }

  /**
   * The next batch, in step order. Rejects with AttfcError on bad data (see maxBadShare); getState()
   * then still points at that batch, so a checkpoint taken now makes it again on resume.
   */
  async next(): Promise<Batch> {
    if (this.closed) throw new Error('data pipeline is closed');
    if (this.current) throw new Error('data pipeline: the previous batch failed; restore a state to continue');
    this.fill();
    const head = this.queue.shift()!;
    this.current = head;
    this.fill();
    const t0 = performance.now();
    const { batch, reply } = await head.result;
    this.totals.waitMs += performance.now() - t0;
    this.account(reply);
    this.current = null;
    return batch;
  }

  /** Where the next batch to be consumed starts; prefetched batches are re-made after setState. */
  getState(): PipelineState {
    const head = this.current ?? this.queue[0];
    if (head) return { sampler: structuredClone(head.samplerBefore), step: head.step };
    return { sampler: this.sampler.getState(), step: this.nextStep };
  }

  setState(state: PipelineState): void {
    this.queue = [];
    this.current = null;
    this.sampler.setState(state.sampler);
    this.nextStep = state.step;
  }

  /**
   * Continues at batch `step` from the start of epoch `epoch`: a resume on a data set of another size,
   * where the saved sampler position has no meaning.
   */
  restartAt(epoch: number, step: number): void {
    this.queue = [];
    this.current = null;
    this.sampler.restartAt(epoch);
    this.nextStep = step;
  }

  stats(): PipelineStats {
    return { ...this.totals };
  }

  /** Stops the workers and closes the dataset; pending next() calls reject. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.queue = [];
    await Promise.all(this.workers.map((w) => w.close()));
    this.dataset.close();
  }

  private fill(): void {
    while (!this.closed && this.queue.length < this.prefetch) {
      const samplerBefore = this.sampler.getState();
      const sampled = this.sampler.nextBatch(this.batchSize);
      const step = this.nextStep++;
      const [start, end] = this.rows;
      const perSample = this.sampleNum - 1;
      const job: WorkerJob = {
        type: 'job',
        id: this.nextJobId++,
        step,
        queries: sampled.queries.slice(start, end),
        keys: sampled.keys.slice(start * perSample, end * perSample),
        // the slots these rows have in the whole batch: flips depend on them, not on who decodes
        querySlot: start,
        keySlot: this.batchSize + start * perSample,
      };
      const worker = this.workers.reduce((best, w) => (w.load < best.load ? w : best));
      const result = worker.run(job).then((reply) => ({
        reply,
        batch: {
          images: reply.images,
          keys: reply.keys,
          labels: sampled.labels.slice(start, end),
          batchLabels: sampled.labels,
          queryIndices: reply.queryIndices,
          keyIndices: reply.keyIndices,
          epoch: sampled.epoch,
          step,
          ...(reply.keyQuality ? { keyQuality: reply.keyQuality } : {}),
        },
      }));
      // batches dropped by setState/close may fail unobserved
      result.catch(() => undefined);
      this.queue.push({ step, samplerBefore, result });
    }
  }

  private account(reply: Extract<WorkerReply, { ok: true }>): void {
    this.totals.decodeMs += reply.decodeMs;
    this.totals.images += reply.queryIndices.length + reply.keyIndices.length;
    const see = (i: number) => {
      if (this.seen[i]) return;
      this.seen[i] = 1;
      this.totals.distinctImages++;
    };
    reply.queryIndices.forEach(see);
    reply.keyIndices.forEach(see);
    for (const bad of reply.bad) {
      see(bad.index);
      if (this.badSeen.has(bad.index)) continue; // an image met again (as a key, or next epoch) is reported once
      this.badSeen.add(bad.index);
      this.onWarning(`${bad.reason}; using ${this.dataset.describe(bad.replacement)} instead`);
    }
    this.totals.badImages = this.badSeen.size;
    const { badImages, distinctImages, images } = this.totals;
    const enough = images >= MIN_IMAGES_FOR_BAD_SHARE && distinctImages >= Math.min(MIN_IMAGES_FOR_BAD_SHARE, this.seen.length);
    if (enough && badImages > this.maxBadShare * distinctImages) {
      throw new AttfcError(
        `${this.dataset.source}: ${badImages} of the ${distinctImages} images seen so far could not be used ` +
          `(${((100 * badImages) / distinctImages).toFixed(2)}%, more than maxBadShare ${(100 * this.maxBadShare).toFixed(2)}%)`,
      );
    }
  }
}
