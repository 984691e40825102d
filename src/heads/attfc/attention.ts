// The attention loader: turns each query's K-1 key embeddings (other images of the same identity,
// embedded by the class encoder f_k) into one Generative Class Centre (GCC).
//
//   a_ij = softmax_j( cos(q_i, g_ij) / T )        (no parameters, no gradient)
//   c_i  = normalise( sum_j a_ij * g_ij )          (g = RAW key embeddings)
//
// Plain JS on Float32Arrays: B*(K-1)*D multiply-adds is tiny, the result is needed in JS anyway (it
// is enqueued into the DCC), and keeping it off the tape guarantees no gradient reaches f_k.

/**
 * 'softmax': the AttFC attention; 'mean': uniform 1/(K-1); 'single': only the first key (DCQ-style,
 * the ablation without multi-image attention).
 */
export type AttentionMode = 'softmax' | 'mean' | 'single';

export const ATTENTION_MODES: readonly AttentionMode[] = ['softmax', 'mean', 'single'];

export interface AttentionOptions {
  mode: AttentionMode;
  /** Softmax temperature T > 0 (softmax mode only); 1 in the paper. */
  temperature: number;
}

export interface ClassCentres {
  /** Unit-norm GCCs, [B, D] row-major. */
  centres: Float32Array;
  /** Attention weights, [B, K-1] row-major; each row sums to 1. */
  weights: Float32Array;
  /** cos(q_i, g_ij), [B, K-1] row-major. */
  cosines: Float32Array;
}

/** Smallest norm a vector is divided by (PyTorch F.normalize's eps). */
const NORM_EPS = 1e-12;

function norm(v: Float32Array, offset: number, dim: number): number {
  let s = 0;
  for (let d = 0; d < dim; d++) s += v[offset + d] * v[offset + d];
  return Math.sqrt(s);
}

/**
 * Attention weights from cosines [B, K-1]: each row becomes a distribution over its keys.
 * Softmax is computed with the row maximum subtracted, so large 1/T cannot overflow.
 */
export function attentionWeights(cosines: Float32Array, keysPerSample: number, opts: AttentionOptions): Float32Array {
  const k = keysPerSample;
  if (!(k >= 1) || cosines.length % k !== 0) throw new Error(`attention: ${cosines.length} cosines do not split into rows of ${k} keys`);
  if (!(opts.temperature > 0)) throw new Error(`attention: temperature must be > 0 (got ${opts.temperature})`);
  const rows = cosines.length / k;
  const w = new Float32Array(cosines.length);
  for (let i = 0; i < rows; i++) {
    const o = i * k;
    if (opts.mode === 'single') {
      w[o] = 1;
    } else if (opts.mode === 'mean') {
      w.fill(1 / k, o, o + k);
    } else {
      let mx = -Infinity;
      for (let j = 0; j < k; j++) mx = Math.max(mx, cosines[o + j] / opts.temperature);
      let sum = 0;
      const e = new Float64Array(k);
      for (let j = 0; j < k; j++) sum += e[j] = Math.exp(cosines[o + j] / opts.temperature - mx);
      for (let j = 0; j < k; j++) w[o + j] = e[j] / sum;
    }
  }
  return w;
}

/**
 * GCCs of a batch. `queries` [B, D] (any norm; the cosine normalises), `keys` [B*(K-1), D] where key j
 * of sample i is row i*(K-1)+j, raw as f_k produced them.
 */
export function generateClassCentres(
  queries: Float32Array,
  keys: Float32Array,
  keysPerSample: number,
  dim: number,
  opts: AttentionOptions,
): ClassCentres {
  const k = keysPerSample;
  const batch = queries.length / dim;
  if (!Number.isInteger(batch) || keys.length !== batch * k * dim)
    throw new Error(`attention: ${keys.length / dim} key rows for ${batch} queries, expected ${batch * k} (${k} per query)`);
  const cosines = new Float32Array(batch * k);
  for (let i = 0; i < batch; i++) {
    const qo = i * dim;
    const qn = Math.max(norm(queries, qo, dim), NORM_EPS);
    for (let j = 0; j < k; j++) {
      const go = (i * k + j) * dim;
      let dot = 0;
      for (let d = 0; d < dim; d++) dot += queries[qo + d] * keys[go + d];
      cosines[i * k + j] = dot / (qn * Math.max(norm(keys, go, dim), NORM_EPS));
    }
  }
  const weights = attentionWeights(cosines, k, opts);
  const centres = new Float32Array(batch * dim);
  const acc = new Float64Array(dim);
  for (let i = 0; i < batch; i++) {
    acc.fill(0);
    for (let j = 0; j < k; j++) {
      const a = weights[i * k + j];
      if (a === 0) continue;
      const go = (i * k + j) * dim;
      for (let d = 0; d < dim; d++) acc[d] += a * keys[go + d];
    }
    let s = 0;
    for (let d = 0; d < dim; d++) s += acc[d] * acc[d];
    const inv = 1 / Math.max(Math.sqrt(s), NORM_EPS);
    for (let d = 0; d < dim; d++) centres[i * dim + d] = acc[d] * inv;
  }
  return { centres, weights, cosines };
}

export interface AttentionStats {
  /** Mean over samples of the largest key weight. */
  attentionMax: number;
  /** Mean over samples of -sum_j a_ij ln a_ij (nats; ln(K-1) is uniform). */
  attentionEntropy: number;
  /** Mean weight of keys with quality < 0.5 (NaN if there are none); only with key qualities. */
  attentionLowQuality?: number;
  /** Mean weight of keys with quality >= 0.5 (NaN if there are none); only with key qualities. */
  attentionHighQuality?: number;
}

/** Summary of attention weights [B, K-1], optionally split by per-key image quality in [0, 1]. */
export function attentionStats(weights: Float32Array, keysPerSample: number, keyQuality?: Float32Array): AttentionStats {
  const k = keysPerSample;
  const rows = weights.length / k;
  let maxSum = 0;
  let entSum = 0;
  for (let i = 0; i < rows; i++) {
    let mx = 0;
    for (let j = 0; j < k; j++) {
      const a = weights[i * k + j];
      mx = Math.max(mx, a);
      if (a > 0) entSum -= a * Math.log(a);
    }
    maxSum += mx;
  }
  const stats: AttentionStats = { attentionMax: maxSum / rows, attentionEntropy: entSum / rows };
  if (keyQuality) {
    if (keyQuality.length !== weights.length)
      throw new Error(`attention: ${keyQuality.length} key qualities for ${weights.length} keys`);
    let lo = 0, nLo = 0, hi = 0, nHi = 0;
    for (let i = 0; i < weights.length; i++) {
      if (keyQuality[i] < 0.5) {
        lo += weights[i];
        nLo++;
      } else {
        hi += weights[i];
        nHi++;
      }
    }
    stats.attentionLowQuality = nLo ? lo / nLo : NaN;
    stats.attentionHighQuality = nHi ? hi / nHi : NaN;
  }
  return stats;
}
