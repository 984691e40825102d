// Identity-grouped sampling for AttFC: every image is a query once per epoch (random order), and each
// query brings K-1 key images of its own identity, drawn uniformly with replacement (as the reference
// attention loader does; a key may equal the query, a one-image identity repeats its image).
import { AttfcError } from '../errors.js';
import { hashInts } from '../util/hash.js';
import { Rng } from '../util/rng.js';
import type { FaceDataset } from './dataset.js';

/** The part of a dataset the sampler needs (labels and per-identity image lists). */
export type SamplerDataset = Pick<FaceDataset, 'numImages' | 'label' | 'identityImages'>;

export interface SamplerOptions {
  /** K = images per sample: 1 query + K-1 keys. K = 1 gives no keys (FC / Partial FC heads). */
  sampleNum: number;
  seed: number;
}

/** Indices of one batch. Key j of sample i is keys[i * (K-1) + j]. */
export interface SampledBatch {
  queries: Int32Array;
  keys: Int32Array;
  labels: Int32Array;
  /** Epoch in which the batch's first query lies (a batch may run on into the next epoch). */
  epoch: number;
}

/** JSON-serialisable position of the sampler; restoring it reproduces the same future batches. */
export interface SamplerState {
  seed: number;
  sampleNum: number;
  numImages: number;
  epoch: number;
  /** Next position in this epoch's permutation. */
  position: number;
  /** State of the key-drawing generator (Rng.getState(); NaN may come back from JSON as null). */
  keyRng: (number | null)[];
}

/**
 * Mixes integers into one 32-bit seed (murmur3-style finaliser per word), so that streams such as
 * "epoch e of seed s" or "flip of slot j in step t" are independent and need no stored state.
 */
export function deriveSeed(...parts: number[]): number {
  return hashInts(0x2545f491, parts);
}

const PERMUTATION_STREAM = 1;
const KEY_STREAM = 2;

export class IdentitySampler {
  readonly sampleNum: number;
  readonly seed: number;
  private readonly dataset: SamplerDataset;
  private epoch = 0;
  private position = 0;
  private permutation: Int32Array;
  private keyRng: Rng;

  constructor(dataset: SamplerDataset, options: SamplerOptions) {
    if (!Number.isInteger(options.sampleNum) || options.sampleNum < 1) {
      throw new RangeError(`sampleNum must be an integer >= 1, got ${options.sampleNum}`);
    }
    if (dataset.numImages < 1) throw new RangeError('the dataset has no images');
    this.dataset = dataset;
    this.sampleNum = options.sampleNum;
    this.seed = options.seed >>> 0;
    this.permutation = this.makePermutation(0);
    this.keyRng = this.makeKeyRng(0);
  }

  /** The current epoch (of the next query to be drawn). */
  get currentEpoch(): number {
    return this.epoch;
  }

  /** Draws the next B samples; crosses into the next epoch when this one runs out (nothing dropped). */
  nextBatch(batchSize: number): SampledBatch {
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batch size must be >= 1, got ${batchSize}`);
    const keysPerSample = this.sampleNum - 1;
    const queries = new Int32Array(batchSize);
    const labels = new Int32Array(batchSize);
    const keys = new Int32Array(batchSize * keysPerSample);
    if (this.position === this.permutation.length) this.startEpoch(this.epoch + 1);
    const epoch = this.epoch;
    for (let i = 0; i < batchSize; i++) {
      if (this.position === this.permutation.length) this.startEpoch(this.epoch + 1);
      const query = this.permutation[this.position++];
      const label = this.dataset.label(query);
      queries[i] = query;
      labels[i] = label;
      if (keysPerSample > 0) {
        const pool = this.dataset.identityImages(label);
        if (pool.length === 0) throw new Error(`identity ${label} of image ${query} has no images`);
        for (let j = 0; j < keysPerSample; j++) keys[i * keysPerSample + j] = pool[this.keyRng.int(pool.length)];
      }
    }
    return { queries, keys, labels, epoch };
  }

  getState(): SamplerState {
    return {
      seed: this.seed,
      sampleNum: this.sampleNum,
      numImages: this.dataset.numImages,
      epoch: this.epoch,
      position: this.position,
      keyRng: this.keyRng.getState(),
    };
  }

  /** Restores a state from getState() (possibly after a JSON round trip). */
  setState(state: SamplerState): void {
    if (state.seed >>> 0 !== this.seed || state.sampleNum !== this.sampleNum || state.numImages !== this.dataset.numImages) {
      throw new AttfcError(
        `sampler state is for seed ${state.seed}, K ${state.sampleNum}, ${state.numImages} images; ` +
          `this sampler has seed ${this.seed}, K ${this.sampleNum}, ${this.dataset.numImages} images`,
      );
    }
    if (!(state.position >= 0 && state.position <= state.numImages) || !(state.epoch >= 0)) {
      throw new RangeError(`sampler state has an invalid epoch ${state.epoch} / position ${state.position}`);
    }
    if (state.epoch !== this.epoch) this.permutation = this.makePermutation(state.epoch);
    this.epoch = state.epoch;
    this.position = state.position;
    this.keyRng.setState(state.keyRng.map((x) => (x === null ? NaN : x)));
  }

  /** Starts epoch `epoch` from its beginning (a resume on data whose positions no longer match). */
  restartAt(epoch: number): void {
    if (!(Number.isInteger(epoch) && epoch >= 0)) throw new RangeError(`epoch must be a whole number >= 0, got ${epoch}`);
    this.startEpoch(epoch);
  }

  private startEpoch(epoch: number): void {
    this.epoch = epoch;
    this.position = 0;
    this.permutation = this.makePermutation(epoch);
    this.keyRng = this.makeKeyRng(epoch);
  }

  private makePermutation(epoch: number): Int32Array {
    const perm = new Int32Array(this.dataset.numImages);
    for (let i = 0; i < perm.length; i++) perm[i] = i;
    return new Rng(deriveSeed(this.seed, PERMUTATION_STREAM, epoch)).shuffle(perm);
  }

  private makeKeyRng(epoch: number): Rng {
    return new Rng(deriveSeed(this.seed, KEY_STREAM, epoch));
  }
}
