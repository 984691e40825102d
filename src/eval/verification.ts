// insightface's verification protocol (arcface_torch/eval/verification.py) as pure functions on
// embeddings: flip-sum, XNorm, L2-normalise, squared distances, 400 thresholds, 10 contiguous folds.
import { AttfcError } from '../errors.js';
import { npMean, npStd, pairwiseSum } from './numeric.js';
import { rocAuc, rocCurve, tarAtFar, type RocCurve } from './roc.js';

/** Number of thresholds: 0.00, 0.01, ..., 3.99 (np.arange(0, 4, 0.01)). */
export const THRESHOLD_COUNT = 400;

/**
 * Threshold i. Computed as i/100 (exact decimal rounding, no accumulated drift). numpy's arange gives
 * i*0.01, which differs in the last bit for a few i; it only matters for a distance within 1 ulp of a step.
 */
export function threshold(i: number): number {
  return i / 100;
}

/** Row norms' mean over every row of every array (insightface's XNorm uses both original and flipped). */
export function meanEmbeddingNorm(arrays: readonly ArrayLike<number>[], dim: number): number {
  let total = 0;
  let rows = 0;
  for (const a of arrays) {
    for (let r = 0; r + dim <= a.length; r += dim) {
      let s = 0;
      for (let k = 0; k < dim; k++) s += a[r + k] * a[r + k];
      total += Math.sqrt(s);
      rows++;
    }
  }
  return rows === 0 ? 0 : total / rows;
}

/** e_orig + e_flip per row, L2-normalised (sklearn.preprocessing.normalize: zero rows stay zero), float64. */
export function flipSumNormalized(orig: ArrayLike<number>, flip: ArrayLike<number>, dim: number): Float64Array {
  if (orig.length !== flip.length) throw new Error(`flipSumNormalized: ${orig.length} vs ${flip.length} values`);
  const out = new Float64Array(orig.length);
  for (let i = 0; i < orig.length; i++) out[i] = orig[i] + flip[i];
  return l2NormalizeRows(out, dim);
}

/** In-place row L2 normalisation; rows with norm 0 are left as they are. */
export function l2NormalizeRows(x: Float64Array, dim: number): Float64Array {
  for (let r = 0; r < x.length; r += dim) {
    let s = 0;
    for (let k = 0; k < dim; k++) s += x[r + k] * x[r + k];
    const norm = Math.sqrt(s) || 1;
    for (let k = 0; k < dim; k++) x[r + k] /= norm;
  }
  return x;
}

/** Squared L2 distance of each pair (rows 2i and 2i+1), summed in numpy's order. */
export function pairSquaredDistances(emb: ArrayLike<number>, dim: number): Float64Array {
  const pairs = Math.floor(emb.length / dim / 2);
  const dist = new Float64Array(pairs);
  const sq = new Float64Array(dim);
  for (let p = 0; p < pairs; p++) {
    const a = 2 * p * dim;
    const b = a + dim;
    for (let k = 0; k < dim; k++) {
      const d = emb[a + k] - emb[b + k];
      sq[k] = d * d;
    }
    dist[p] = pairwiseSum(sq);
  }
  return dist;
}

/** sklearn KFold(n_splits=k, shuffle=False): contiguous folds, the first n % k folds one larger. */
export function kFoldRanges(n: number, k = 10): { start: number; end: number }[] {
  if (n < k) throw new AttfcError(`${k}-fold verification needs at least ${k} pairs, got ${n}`);
  const base = Math.floor(n / k);
  const out: { start: number; end: number }[] = [];
  let start = 0;
  for (let f = 0; f < k; f++) {
    const size = base + (f < n % k ? 1 : 0);
    out.push({ start, end: start + size });
    start += size;
  }
  return out;
}

export interface FoldAccuracy {
  /** Mean of the held-out fold accuracies. */
  accuracy: number;
  /** Population standard deviation of the fold accuracies (np.std). */
  std: number;
  foldAccuracies: number[];
  /** Threshold chosen on the other folds, per fold. */
  foldThresholds: number[];
}

/**
 * insightface calculate_roc: for each fold, the threshold with the best accuracy on the other folds
 * (first maximum), scored on the held-out fold. A pair is predicted "same" iff dist < threshold.
 */
export function tenFoldAccuracy(dist: ArrayLike<number>, issame: ArrayLike<boolean>, nFolds = 10): FoldAccuracy {
  if (dist.length !== issame.length) throw new Error(`tenFoldAccuracy: ${dist.length} distances, ${issame.length} labels`);
  const folds = kFoldRanges(dist.length, nFolds);
  // correct[f * T + t]: correctly predicted pairs of fold f at threshold t
  const correct = new Int32Array(nFolds * THRESHOLD_COUNT);
  folds.forEach(({ start, end }, f) => {
    for (let t = 0; t < THRESHOLD_COUNT; t++) {
      const th = threshold(t);
      let c = 0;
      for (let i = start; i < end; i++) if (dist[i] < th === issame[i]) c++;
      correct[f * THRESHOLD_COUNT + t] = c;
    }
  });
  const foldAccuracies: number[] = [];
  const foldThresholds: number[] = [];
  folds.forEach(({ start, end }, f) => {
    let best = -1;
    let bestT = 0;
    for (let t = 0; t < THRESHOLD_COUNT; t++) {
      let c = 0;
      for (let g = 0; g < nFolds; g++) if (g !== f) c += correct[g * THRESHOLD_COUNT + t];
      if (c > best) { // strict: the first maximum wins, like np.argmax
        best = c;
        bestT = t;
      }
    }
    foldThresholds.push(threshold(bestT));
    foldAccuracies.push(correct[f * THRESHOLD_COUNT + bestT] / (end - start));
  });
  const acc = Float64Array.from(foldAccuracies);
  return { accuracy: npMean(acc), std: npStd(acc), foldAccuracies, foldThresholds };
}

export interface VerificationMetrics extends FoldAccuracy {
  pairs: number;
  xnorm: number;
  /** TAR at FAR <= 1e-3 over all pairs (see tarAtFar); not insightface's fold-interpolated "VAL". */
  tarAtFar1e3: number;
  auc: number;
  /** ROC over all pairs, score = -distance (sklearn roc_curve with drop_intermediate). */
  roc: RocCurve;
  distances: Float64Array;
}

/**
 * The whole protocol from raw embeddings: `orig` and `flip` are [2P, dim] (row-major) embeddings of
 * the images and their mirror images; `issame` has P labels.
 */
export function verificationMetrics(
  orig: ArrayLike<number>,
  flip: ArrayLike<number>,
  issame: readonly boolean[],
  dim: number,
): VerificationMetrics {
  if (orig.length !== 2 * issame.length * dim)
    throw new Error(`verificationMetrics: ${orig.length} values, expected ${2 * issame.length} x ${dim}`);
  const xnorm = meanEmbeddingNorm([orig, flip], dim);
  const emb = flipSumNormalized(orig, flip, dim);
  const distances = pairSquaredDistances(emb, dim);
  const folds = tenFoldAccuracy(distances, issame);
  const scores = distances.map((d) => -d);
  const tarCurve = rocCurve(scores, issame, { dropIntermediate: false });
  const roc = rocCurve(scores, issame);
  return {
    ...folds,
    pairs: issame.length,
    xnorm,
    tarAtFar1e3: tarAtFar(tarCurve, 1e-3),
    auc: rocAuc(roc),
    roc,
    distances,
  };
}
