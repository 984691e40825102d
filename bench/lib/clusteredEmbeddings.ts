// Class-clustered synthetic embeddings for head benchmarks: every identity has a fixed random unit
// centre, and an "image" of it embeds to that centre plus Gaussian noise. The centre of a label is
// derived from the label itself (a tiny seeded Rng per label), so no N x D centre table is needed even
// at 2M identities and a batch costs only B (and B*(K-1) keys) draws of D normals.
import { Rng } from '../../src/util/rng.js';

export interface ClusteredBatch {
  /** Uniform over 0..N-1, length B. */
  labels: Int32Array;
  /** Raw query embeddings [B, D] row-major. */
  embeddings: Float32Array;
  /** Raw key embeddings [B*keysPerSample, D]; key j of sample i is row i*keysPerSample+j. */
  keys: Float32Array;
}

export interface ClusteredEmbeddingOptions {
  numClasses: number;
  dim: number;
  seed: number;
  /**
   * Noise norm relative to the unit centre; 1 puts an embedding at cosine ~0.7 from its centre and
   * two images of one identity at ~0.5 from each other (a partly trained encoder).
   */
  noise?: number;
  /** Norm of the raw (un-normalised) embeddings; the heads normalise, so it only has to be > 0. */
  scale?: number;
}

export class ClusteredEmbeddings {
  readonly numClasses: number;
  readonly dim: number;
  private readonly seed: number;
  private readonly noiseSd: number;
  private readonly scale: number;
  private readonly rng: Rng;

  constructor(opts: ClusteredEmbeddingOptions) {
    if (!(Number.isInteger(opts.numClasses) && opts.numClasses >= 1)) throw new Error(`clustered embeddings: numClasses ${opts.numClasses} must be a whole number >= 1`);
    if (!(Number.isInteger(opts.dim) && opts.dim >= 1)) throw new Error(`clustered embeddings: dim ${opts.dim} must be a whole number >= 1`);
    this.numClasses = opts.numClasses;
    this.dim = opts.dim;
    this.seed = opts.seed >>> 0;
    this.noiseSd = (opts.noise ?? 1) / Math.sqrt(opts.dim);
    this.scale = opts.scale ?? 8;
    this.rng = new Rng(opts.seed);
  }

  /** The unit centre of `label` (the same for every call and every generator with this seed). */
  centre(label: number): Float32Array {
    const r = new Rng((Math.imul(label + 1, 0x9e3779b1) ^ this.seed) >>> 0);
    const c = new Float32Array(this.dim);
    let ss = 0;
    for (let d = 0; d < this.dim; d++) {
      const x = r.normal();
      c[d] = x;
      ss += x * x;
    }
    const inv = 1 / Math.sqrt(ss);
    for (let d = 0; d < this.dim; d++) c[d] *= inv;
    return c;
  }

  /** The next batch of B samples with `keysPerSample` key embeddings each (0 for FC heads). */
  batch(batchSize: number, keysPerSample: number): ClusteredBatch {
    const D = this.dim;
    const labels = new Int32Array(batchSize);
    const embeddings = new Float32Array(batchSize * D);
    const keys = new Float32Array(batchSize * keysPerSample * D);
    for (let i = 0; i < batchSize; i++) {
      const y = this.rng.int(this.numClasses);
      labels[i] = y;
      const c = this.centre(y);
      this.noisy(c, embeddings, i * D);
      for (let j = 0; j < keysPerSample; j++) this.noisy(c, keys, (i * keysPerSample + j) * D);
    }
    return { labels, embeddings, keys };
  }

  /** out[off..off+D) = scale * (centre + noise). */
  private noisy(centre: Float32Array, out: Float32Array, off: number): void {
    for (let d = 0; d < this.dim; d++) out[off + d] = this.scale * (centre[d] + this.noiseSd * this.rng.normal());
  }
}
