// Pure numerics of bench:accuracy: summaries across seeds, class-centre cosines and attention weights
// split by image quality. No tensors here, so every piece is unit-testable.

/** Mean, population std and range of a list of numbers (NaN entries are skipped). */
export interface SeedSummary {
  mean: number;
  std: number;
  min: number;
  max: number;
  n: number;
}

export function summarise(values: readonly number[]): SeedSummary {
  const v = values.filter((x) => Number.isFinite(x));
  if (v.length === 0) return { mean: NaN, std: NaN, min: NaN, max: NaN, n: 0 };
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const variance = v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length;
  return { mean, std: Math.sqrt(variance), min: Math.min(...v), max: Math.max(...v), n: v.length };
}

/** Unit-length copy of `dim` floats of `src` starting at `offset` (a zero vector stays zero). */
export function unitVector(src: Float32Array, offset: number, dim: number): Float32Array {
  const out = new Float32Array(dim);
  let s = 0;
  for (let d = 0; d < dim; d++) s += src[offset + d] * src[offset + d];
  const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
  for (let d = 0; d < dim; d++) out[d] = src[offset + d] * inv;
  return out;
}

/** Cosine of row `ai` of `a` and row `bi` of `b` (both [*, dim] row-major); 0 if either is zero. */
export function cosineRows(a: Float32Array, ai: number, b: Float32Array, bi: number, dim: number): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let d = 0; d < dim; d++) {
    const x = a[ai * dim + d];
    const y = b[bi * dim + d];
    dot += x * y;
    na += x * x;
    nb += y * y;
  }
  return na > 0 && nb > 0 ? dot / Math.sqrt(na * nb) : 0;
}

/**
 * The true class centre of one identity: the normalised mean of its images' normalised embeddings.
 * `rows` are row indices into `embeddings` [*, dim].
 */
export function trueClassCentre(embeddings: Float32Array, rows: readonly number[], dim: number): Float32Array {
  const acc = new Float64Array(dim);
  for (const r of rows) {
    const u = unitVector(embeddings, r * dim, dim);
    for (let d = 0; d < dim; d++) acc[d] += u[d];
  }
  return unitVector(Float32Array.from(acc), 0, dim);
}

/** Running mean of attention weights given to low-quality (< threshold) and high-quality keys. */
export class AttentionByQuality {
  private low = 0;
  private nLow = 0;
  private high = 0;
  private nHigh = 0;

  constructor(private readonly threshold = 0.5) {}

  /** Adds weights and the matching key qualities; keys of unknown (NaN) quality are skipped. */
  add(weights: ArrayLike<number>, quality: ArrayLike<number>): void {
    if (weights.length !== quality.length) throw new Error(`attention by quality: ${weights.length} weights for ${quality.length} qualities`);
    for (let i = 0; i < weights.length; i++) {
      const q = quality[i];
      if (Number.isNaN(q)) continue;
      if (q < this.threshold) {
        this.low += weights[i];
        this.nLow++;
      } else {
        this.high += weights[i];
        this.nHigh++;
      }
    }
  }

  result(): { low: number; high: number; lowKeys: number; highKeys: number } {
    return {
      low: this.nLow ? this.low / this.nLow : NaN,
      high: this.nHigh ? this.high / this.nHigh : NaN,
      lowKeys: this.nLow,
      highKeys: this.nHigh,
    };
  }
}

/** Mean of the finite values of one key across a list of records (NaN when there are none). */
export function meanOfKey(records: readonly Record<string, number>[], key: string): number {
  return summarise(records.map((r) => r[key] ?? NaN)).mean;
}
