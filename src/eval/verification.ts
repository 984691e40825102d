// insightface's verification protocol (arcface_torch/eval/verification.py) as pure functions on
// embeddings: flip-sum, XNorm, L2-normalise, squared distances, 400 thresholds, 10 contiguous folds,
// and its VAL@FAR (calculate_val: a 4,000-threshold grid and a per-fold interpolated threshold).
import { AttfcError } from '../errors.js';
import { npMean, npStd, pairwiseSum } from './numeric.js';
import { rocAuc, rocCurve, tarAtFar, type RocCurve } from './roc.js';

/**
 * np.arange(start, stop, step) for float64, value for value: ceil((stop - start) / step) values, the
 * first two `start` and `start + step`, then start + i * delta with delta = (start + step) - start
 * (numpy's DOUBLE_fill). For arange(0, 4, 0.01) that is i * 0.01, which is one ulp above i / 100 at 51
 * of the 400 points (0.35, 0.41, 0.57, ...): a distance equal to i / 100 is below the grid value there.
 */
export function npArange(start: number, stop: number, step: number): Float64Array {
  const length = Math.max(0, Math.ceil((stop - start) / step));
  const out = new Float64Array(length);
  if (length > 0) out[0] = start;
  if (length > 1) out[1] = start + step;
  const delta = start + step - start;
  for (let i = 2; i < length; i++) out[i] = start + i * delta;
  return out;
}

/** The accuracy protocol's thresholds, np.arange(0, 4, 0.01): 0, 0.01, ..., 3.99. */
export const THRESHOLDS = npArange(0, 4, 0.01);

/** Number of thresholds (400). */
export const THRESHOLD_COUNT = THRESHOLDS.length;

/** calculate_val's thresholds, np.arange(0, 4, 0.001): 4,000 of them. */
export const VAL_THRESHOLDS = npArange(0, 4, 0.001);

/** Threshold i of the accuracy protocol. */
export function threshold(i: number): number {
  return THRESHOLDS[i];
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

/**
 * Linear interpolation as scipy's interp1d(x, y, kind='slinear')(xNew) computed it up to scipy 1.8:
 * a degree-1 B-spline with knots [x0, x0..x(n-1), x(n-1)] and coefficients y, evaluated by scipy's
 * interval search and de Boor step. Those versions accepted repeated x values, and insightface's
 * calculate_val relies on that: its FAR-by-threshold table repeats a FAR over every threshold between
 * two negative pairs. (scipy 1.9 and later refuse such x with "Expect x to not have duplicates".) With
 * repeats, the result interpolates between the LAST point whose x <= xNew and the point after it, so
 * at a repeated x it returns the y of that run's last point. At xNew equal to the largest x, when that
 * x is repeated, the interval has zero length and de Boor yields 0, as scipy did.
 * x is stably sorted first (interp1d's mergesort argsort); xNew outside [min x, max x] is an error
 * (interp1d's bounds_error).
 */
export function interp1dSlinear(x: ArrayLike<number>, y: ArrayLike<number>, xNew: number): number {
  const n = x.length;
  if (n < 2 || y.length !== n) throw new Error(`interp1dSlinear: needs at least 2 points and as many y as x (got ${n} x, ${y.length} y)`);
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => x[a] - x[b] || a - b);
  const xs = order.map((i) => x[i]);
  const c = order.map((i) => y[i]);
  if (!(xNew >= xs[0] && xNew <= xs[n - 1])) throw new Error(`interp1dSlinear: ${xNew} is outside [${xs[0]}, ${xs[n - 1]}]`);
  // knots t[0] = x0, t[i] = x(i-1) for i = 1..n, t[n+1] = x(n-1); degree k = 1; n coefficients
  const t = (i: number) => (i === 0 ? xs[0] : i === n + 1 ? xs[n - 1] : xs[i - 1]);
  // find_interval from k = 1: the first l >= 2 with t[l] > xNew (or l = n), minus one
  let l = 2;
  while (xNew >= t(l) && l !== n) l++;
  const m = l - 1;
  const xa = t(m);
  const xb = t(m + 1);
  if (xb === xa) return 0;
  const w = 1 / (xb - xa);
  return c[m - 1] * (w * (xb - xNew)) + c[m] * (w * (xNew - xa));
}

export interface ValAtFar {
  /** Mean over the 10 folds of the held-out TAR at the fold's threshold (insightface's `val`). */
  val: number;
  /** Population std of the fold values (`val_std`). */
  std: number;
  /** Mean held-out FAR at those thresholds (`far`). */
  far: number;
  /** The threshold each fold used (0 when its training FAR never reaches the target). */
  foldThresholds: number[];
}

/**
 * insightface calculate_val: per fold, the FAR of the training folds at each of the 4,000 thresholds
 * (a pair is accepted iff dist < threshold), the threshold where that FAR reaches `farTarget` by
 * interp1dSlinear (0 when it never does), then the held-out fold's TAR and FAR there. NaN when a fold's
 * training or held-out part lacks same or different pairs, where insightface divides by zero.
 */
export function calculateVal(dist: ArrayLike<number>, issame: ArrayLike<boolean>, farTarget = 1e-3, nFolds = 10): ValAtFar {
  if (dist.length !== issame.length) throw new Error(`calculateVal: ${dist.length} distances, ${issame.length} labels`);
  const folds = kFoldRanges(dist.length, nFolds);
  const nan: ValAtFar = { val: NaN, std: NaN, far: NaN, foldThresholds: folds.map(() => NaN) };
  const vals: number[] = [];
  const fars: number[] = [];
  const foldThresholds: number[] = [];
  for (const { start, end } of folds) {
    const trainNeg: number[] = [];
    let trainSame = 0;
    for (let i = 0; i < dist.length; i++) {
      if (i >= start && i < end) continue;
      if (issame[i]) trainSame++;
      else trainNeg.push(dist[i]);
    }
    if (trainSame === 0 || trainNeg.length === 0) return nan;
    trainNeg.sort((a, b) => a - b);
    const farTrain = new Float64Array(VAL_THRESHOLDS.length);
    let accepted = 0;
    for (let t = 0; t < VAL_THRESHOLDS.length; t++) {
      while (accepted < trainNeg.length && trainNeg[accepted] < VAL_THRESHOLDS[t]) accepted++;
      farTrain[t] = accepted / trainNeg.length;
    }
    let maxFar = 0;
    for (const f of farTrain) if (f > maxFar) maxFar = f;
    const th = maxFar >= farTarget ? interp1dSlinear(farTrain, VAL_THRESHOLDS, farTarget) : 0;
    let ta = 0;
    let fa = 0;
    let same = 0;
    for (let i = start; i < end; i++) {
      const accept = dist[i] < th;
      if (issame[i]) {
        same++;
        if (accept) ta++;
      } else if (accept) fa++;
    }
    const diff = end - start - same;
    if (same === 0 || diff === 0) return nan;
    vals.push(ta / same);
    fars.push(fa / diff);
    foldThresholds.push(th);
  }
  const v = Float64Array.from(vals);
  return { val: npMean(v), std: npStd(v), far: npMean(Float64Array.from(fars)), foldThresholds };
}

export interface VerificationMetrics extends FoldAccuracy {
  pairs: number;
  xnorm: number;
  /**
   * attfc's operating point, not insightface's: the best TAR over ALL pairs (no folds) among the ROC
   * points with FAR <= 1e-3 (see tarAtFar).
   */
  tarAtFar1e3AllPairs: number;
  /** insightface's VAL@FAR=1e-3 (calculate_val), as verification.py computes and discards it. */
  valAtFar1e3: ValAtFar;
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
    tarAtFar1e3AllPairs: tarAtFar(tarCurve, 1e-3),
    valAtFar1e3: calculateVal(distances, issame, 1e-3),
    auc: rocAuc(roc),
    roc,
    distances,
  };
}
