// ROC curves with scikit-learn's roc_curve semantics (the IJB scripts call it), AUC, and the two ways of
// reading a TAR off a curve: "best TAR with FAR <= target" and insightface's "point closest to target".
import { AttfcError } from '../errors.js';
import { pairwiseSum } from './numeric.js';

/** A ROC curve: one point per distinct score threshold, starting at (0, 0); FPR and TPR non-decreasing. */
export interface RocCurve {
  fpr: Float64Array;
  tpr: Float64Array;
  /** Score threshold of each point (accept iff score >= threshold); the first is +Infinity. */
  thresholds: Float64Array;
  positives: number;
  negatives: number;
}

/**
 * ROC of `scores` (higher = more likely positive) against `positive` labels, as
 * sklearn.metrics.roc_curve(labels, scores, drop_intermediate) computes it: equal scores form one point,
 * so an operating point never splits a tie. `dropIntermediate` (sklearn's default) removes points whose
 * neighbours make the same step, which keeps the corners of the curve.
 */
export function rocCurve(
  scores: ArrayLike<number>,
  positive: ArrayLike<boolean>,
  options: { dropIntermediate?: boolean } = {},
): RocCurve {
  if (scores.length !== positive.length) throw new Error(`rocCurve: ${scores.length} scores but ${positive.length} labels`);
  let nPos = 0;
  for (let i = 0; i < scores.length; i++) {
    if (Number.isNaN(scores[i])) throw new AttfcError(`ROC: score ${i} is NaN (the model produced non-finite embeddings)`);
    if (positive[i]) nPos++;
  }
  const nNeg = scores.length - nPos;
  if (nPos === 0 || nNeg === 0)
    throw new AttfcError(`ROC needs both positive and negative pairs (got ${nPos} positive, ${nNeg} negative)`);
  // Two native typed-array sorts and a merge instead of an index sort: fast for IJB-C's 15.7M pairs.
  const p = new Float64Array(nPos);
  const n = new Float64Array(nNeg);
  for (let i = 0, a = 0, b = 0; i < scores.length; i++) {
    if (positive[i]) p[a++] = scores[i];
    else n[b++] = scores[i];
  }
  p.sort().reverse();
  n.sort().reverse();
  const tps = new Float64Array(scores.length);
  const fps = new Float64Array(scores.length);
  const thr = new Float64Array(scores.length);
  let count = 0;
  let ip = 0;
  let ineg = 0;
  while (ip < nPos || ineg < nNeg) {
    const v = ip < nPos && (ineg >= nNeg || p[ip] >= n[ineg]) ? p[ip] : n[ineg];
    while (ip < nPos && p[ip] === v) ip++;
    while (ineg < nNeg && n[ineg] === v) ineg++;
    tps[count] = ip;
    fps[count] = ineg;
    thr[count] = v;
    count++;
  }
  const drop = (options.dropIntermediate ?? true) && count > 2;
  const keep = new Uint8Array(count).fill(1);
  if (drop) {
    for (let i = 1; i < count - 1; i++) {
      const d2f = fps[i + 1] - 2 * fps[i] + fps[i - 1];
      const d2t = tps[i + 1] - 2 * tps[i] + tps[i - 1];
      if (d2f === 0 && d2t === 0) keep[i] = 0;
    }
  }
  let m = 1;
  for (let i = 0; i < count; i++) m += keep[i];
  const fpr = new Float64Array(m);
  const tpr = new Float64Array(m);
  const thresholds = new Float64Array(m);
  thresholds[0] = Infinity;
  for (let i = 0, j = 1; i < count; i++) {
    if (!keep[i]) continue;
    fpr[j] = fps[i] / nNeg;
    tpr[j] = tps[i] / nPos;
    thresholds[j] = thr[i];
    j++;
  }
  return { fpr, tpr, thresholds, positives: nPos, negatives: nNeg };
}

/** Area under the curve by the trapezoid rule (sklearn.metrics.auc / np.trapz). */
export function rocAuc(roc: { fpr: ArrayLike<number>; tpr: ArrayLike<number> }): number {
  const n = roc.fpr.length;
  if (n < 2) return 0;
  const parts = new Float64Array(n - 1);
  for (let i = 1; i < n; i++) parts[i - 1] = ((roc.fpr[i] - roc.fpr[i - 1]) * (roc.tpr[i] + roc.tpr[i - 1])) / 2;
  return pairwiseSum(parts);
}

/**
 * The highest TAR whose FAR is at most `far`: the operating point a deployment would pick. Computed on
 * a curve built with dropIntermediate false so no operating point is missing; ties in score are
 * accepted or rejected together. 0 if even the strictest threshold exceeds the FAR.
 */
export function tarAtFar(roc: RocCurve, far: number): number {
  let best = 0;
  for (let i = 0; i < roc.fpr.length; i++) if (roc.fpr[i] <= far && roc.tpr[i] > best) best = roc.tpr[i];
  return best;
}

/**
 * insightface eval_ijbc.py: the TPR of the ROC point whose FPR is closest to `target`; on equal
 * distance the point with the larger FPR (it flips the curve and takes the first minimum).
 */
export function tprAtClosestFpr(roc: RocCurve, target: number): number {
  let bestIndex = 0;
  let bestDist = Infinity;
  for (let i = 0; i < roc.fpr.length; i++) {
    const d = Math.abs(roc.fpr[i] - target);
    if (d <= bestDist) {
      bestDist = d;
      bestIndex = i;
    }
  }
  return roc.tpr[bestIndex];
}
