// insightface's verification protocol and the ROC helpers, checked against numbers worked out by hand.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatVerificationLine } from '../../src/eval/evaluateBin.js';
import { formatFixed, npStd, pairwiseSum } from '../../src/eval/numeric.js';
import { rocAuc, rocCurve, tarAtFar, tprAtClosestFpr } from '../../src/eval/roc.js';
import {
  flipSumNormalized,
  kFoldRanges,
  meanEmbeddingNorm,
  pairSquaredDistances,
  tenFoldAccuracy,
  threshold,
  verificationMetrics,
  npArange,
  interp1dSlinear,
  calculateVal,
  THRESHOLDS,
  VAL_THRESHOLDS,
} from '../../src/eval/verification.js';

// 13 pairs (not a multiple of 10), S = same identity, D = different. Pairs 1 and 2 tie at distance 1.00,
// which is also a threshold (1.00 < 1.00 is false, so at t = 1.00 both are predicted "different").
//   pair:  0    1    2    3    4    5    6    7    8    9    10   11   12
//   dist:  0.2  1.0  1.0  0.5  1.5  0.8  1.2  0.9  1.1  0.3  2.0  1.3  0.6
//   label: S    D    S    S    D    S    D    D    S    S    D    D    S
const DIST = [0.2, 1.0, 1.0, 0.5, 1.5, 0.8, 1.2, 0.9, 1.1, 0.3, 2.0, 1.3, 0.6];
const SAME = [true, false, true, true, false, true, false, false, true, true, false, false, true];

test('KFold(10) without shuffle: contiguous folds, the first n % 10 one larger', () => {
  // 13 = 10 * 1 + 3: folds 0-2 hold 2 pairs, folds 3-9 hold 1
  assert.deepEqual(
    kFoldRanges(13).map((f) => [f.start, f.end]),
    [[0, 2], [2, 4], [4, 6], [6, 7], [7, 8], [8, 9], [9, 10], [10, 11], [11, 12], [12, 13]],
  );
  assert.deepEqual(kFoldRanges(6000).map((f) => f.end - f.start), Array(10).fill(600));
  assert.throws(() => kFoldRanges(9), /10-fold verification needs at least 10 pairs, got 9/);
});

test('thresholds are np.arange(0, 4, 0.01) value for value: i * 0.01, one ulp above i/100 at 51 points', () => {
  assert.equal(threshold(0), 0);
  assert.equal(threshold(30), 0.3);
  assert.equal(threshold(399), 3.99);
  assert.equal(THRESHOLDS.length, 400);
  // numpy: np.arange(0, 4, 0.01)[57] == 0.5700000000000001, while 57/100 == 0.57
  assert.equal(threshold(57), 0.5700000000000001);
  const differing = [...THRESHOLDS.keys()].filter((i) => THRESHOLDS[i] !== i / 100);
  assert.equal(differing.length, 51);
  assert.deepEqual(differing.slice(0, 6), [35, 41, 47, 57, 69, 70]);
  assert.ok(differing.every((i) => THRESHOLDS[i] > i / 100));
  assert.equal(VAL_THRESHOLDS.length, 4000);
  assert.equal(VAL_THRESHOLDS[1000], 1);
  assert.equal(VAL_THRESHOLDS[1001], 1.0010000000000001); // 1001 * 0.001, as numpy fills it
  assert.deepEqual([...npArange(1, 2, 0.25)], [1, 1.25, 1.5, 1.75]);
});

test('a distance equal to 57/100 is below the grid value 57 * 0.01: the fold accuracy changes', () => {
  // 10 folds of 6 pairs: 3 same at distance 0.565, 3 different at 3.0; in fold 0 one same pair sits at
  // exactly 0.57 (= 57/100). Thresholds 0.56 < 0.565 < 0.57 < 0.5700000000000001 = grid[57].
  // numpy grid: grid[57] accepts every same pair, so every fold picks t = grid[57] and scores 6/6.
  // An i/100 grid would reject the 0.57 pair at t = 0.57: fold 0 (trained without it) would pick 0.57
  // and score 5/6, folds 1-9 would pick 0.58: mean 0.98333 instead of 1.
  const dist: number[] = [];
  const same: boolean[] = [];
  for (let f = 0; f < 10; f++)
    for (let k = 0; k < 6; k++) {
      same.push(k < 3);
      dist.push(k >= 3 ? 3.0 : f === 0 && k === 0 ? 57 / 100 : 0.565);
    }
  const r = tenFoldAccuracy(dist, same);
  assert.deepEqual(r.foldAccuracies, Array(10).fill(1));
  assert.deepEqual(r.foldThresholds, Array(10).fill(0.5700000000000001));
  assert.equal(r.accuracy, 1);
});

test('interp1dSlinear: scipy <= 1.8 slinear on repeated x (last point of a run), zero-length top interval -> 0', () => {
  // distinct x: ordinary linear interpolation
  assert.equal(interp1dSlinear([0, 1, 2], [10, 20, 40], 1.5), 30);
  // x = [0, 0, 1]: at 0 the run's last point (y 0.5) counts, between 0 and 1 it runs from there
  assert.equal(interp1dSlinear([0, 0, 1], [0, 0.5, 1], 0), 0.5);
  assert.equal(interp1dSlinear([0, 0, 1], [0, 0.5, 1], 0.5), 0.75);
  // a run in the middle: at x = 1 the value is the run's last y (3); just above, from (1, 3) to (2, 4)
  assert.equal(interp1dSlinear([0, 1, 1, 1, 2], [0, 1, 2, 3, 4], 1), 3);
  assert.equal(interp1dSlinear([0, 1, 1, 1, 2], [0, 1, 2, 3, 4], 1.5), 3.5);
  // the largest x repeated, evaluated there: scipy's de Boor step sees t[l] == t[l+1] and gives 0
  assert.equal(interp1dSlinear([0, 0.5, 1, 1], [10, 20, 30, 40], 1), 0);
  // unsorted x is stably sorted first
  assert.equal(interp1dSlinear([1, 0, 0], [1, 0, 0.5], 0), 0.5);
  assert.throws(() => interp1dSlinear([0, 1], [0, 1], 1.5), /outside/);
});

test("insightface's VAL@FAR=1e-3 (calculate_val), worked out by hand", () => {
  // 10 folds of 2 pairs: a same pair and a different pair at 1.0005. Each fold trains on 9 different
  // pairs, all at 1.0005: FAR_train is 0 at thresholds 0 .. 1.000 (indices 0..1000) and 1 from 1.001
  // on. The interpolation at 1e-3 runs from the LAST zero, (0, 1.000), to (1, 1.001 + 1 ulp):
  //   t = 1.000 * (1 - 0.001) + 1.001 * 0.001 = 0.999 + 0.001001 = 1.000001.
  // Same pairs at 1.0000005 (folds 0-4) are below it, at 1.0000015 (folds 5-9) above; no different
  // pair is accepted. VAL per fold = 1,1,1,1,1,0,0,0,0,0: mean 0.5, std 0.5, FAR 0.
  // (Reading the first zero instead, t = 0.000001, would give VAL 0; a step at 1.001 would give 1.)
  const dist: number[] = [];
  const same: boolean[] = [];
  for (let f = 0; f < 10; f++) {
    dist.push(f < 5 ? 1.0000005 : 1.0000015, 1.0005);
    same.push(true, false);
  }
  const v = calculateVal(dist, same);
  for (const t of v.foldThresholds) assert.ok(Math.abs(t - 1.000001) < 1e-12, `threshold ${t}`);
  assert.equal(v.val, 0.5);
  assert.equal(v.std, 0.5);
  assert.equal(v.far, 0);

  // No training FAR reaches 1e-3 (every different pair beyond the last threshold 3.999): threshold 0,
  // nothing accepted, VAL 0.
  const far = calculateVal(dist.map((d, i) => (same[i] ? d : 4)), same);
  assert.deepEqual(far.foldThresholds, Array(10).fill(0));
  assert.equal(far.val, 0);
  // a fold without different pairs: insightface divides by zero; here VAL is NaN
  assert.ok(Number.isNaN(calculateVal(dist, dist.map((_, i) => i !== 1)).val));
});

test('10-fold accuracy matches the hand computation (ties, uneven folds, first maximum)', () => {
  // Correct predictions over ALL 13 pairs as a function of t (S correct iff d < t, D correct iff d >= t):
  //   t <= .2: 6 | (.2,.3]: 7 | (.3,.5]: 8 | (.5,.6]: 9 | (.6,.8]: 10 | (.8,.9]: 11 | (.9,1]: 10
  //   (1,1.1]: 10 (S2 gained, D1 lost at the tie) | (1.1,1.2]: 11 | (1.2,1.3]: 10 | (1.3,1.5]: 9 | (1.5,2]: 8 | > 2: 7
  // Training count of fold f = total minus the held-out pairs' own contribution; best = first maximum:
  //   fold 0 {S0 .2, D1 1.0}: 11-2 at (.8,.9] = 9, 11-1 at (1.1,1.2] = 10 -> t=1.11; test: S0 ok, D1 wrong -> 1/2
  //   fold 1 {S2 1.0, S3 .5}: (.8,.9] 11-1 = 10 (max)                        -> t=0.81; S2 wrong, S3 ok -> 1/2
  //   fold 2 {D4 1.5, S5 .8}: (.6,.8] 10-1 = 9 first, (.8,.9] 11-2 = 9        -> t=0.61; D4 ok, S5 wrong -> 1/2
  //   fold 3 {D6 1.2}:  (.8,.9] 11-1 = 10 first                               -> t=0.81; D6 ok          -> 1
  //   fold 4 {D7 .9}:   (.8,.9] 11-1 = 10, (1.1,1.2] 11-0 = 11                -> t=1.11; D7 wrong       -> 0
  //   fold 5 {S8 1.1}:  (.8,.9] 11-0 = 11                                     -> t=0.81; S8 wrong       -> 0
  //   fold 6 {S9 .3}:   (.8,.9] 11-1 = 10 first                               -> t=0.81; S9 ok          -> 1
  //   fold 7 {D10 2.0}: (.8,.9] 11-1 = 10 first                               -> t=0.81; D10 ok         -> 1
  //   fold 8 {D11 1.3}: (.8,.9] 11-1 = 10 first                               -> t=0.81; D11 ok         -> 1
  //   fold 9 {S12 .6}:  (.8,.9] 11-1 = 10 first                               -> t=0.81; S12 ok         -> 1
  // mean = 6.5/10 = 0.65; deviations -0.15 (x3), +0.35 (x5), -0.65 (x2):
  // var = (3*0.0225 + 5*0.1225 + 2*0.4225)/10 = 1.525/10 = 0.1525, std = sqrt(0.1525) = 0.390512...
  const r = tenFoldAccuracy(DIST, SAME);
  assert.deepEqual(r.foldAccuracies, [0.5, 0.5, 0.5, 1, 0, 0, 1, 1, 1, 1]);
  assert.deepEqual(r.foldThresholds, [1.11, 0.81, 0.61, 0.81, 1.11, 0.81, 0.81, 0.81, 0.81, 0.81]);
  assert.equal(r.accuracy, 0.65);
  assert.ok(Math.abs(r.std - Math.sqrt(0.1525)) < 1e-15);
  assert.equal(formatVerificationLine('lfw', 2000, r), '[lfw][2000]Accuracy-Flip: 0.65000+-0.39051');
});

test('numpy-order sums and Python %f rounding', () => {
  // pairwise order for 10 terms: ((a0+a1)+(a2+a3))+((a4+a5)+(a6+a7)), then + a8 + a9
  const a = [1e16, 1, -1e16, 1, 0, 0, 0, 0, 1, 1];
  // (1e16+1) rounds to 1e16 and (-1e16+1) to -1e16, so the pairs cancel: 0 + 1 + 1 = 2
  // (a left-to-right sum gives 3: 1e16+1 -> 1e16, -1e16 -> 0, then + 1 + 1 + 1)
  assert.equal(pairwiseSum(a), 2);
  assert.equal(a.reduce((x, y) => x + y, 0), 3);
  assert.equal(npStd([1, 1, 1]), 0);
  assert.equal(npStd([0, 1]), 0.5); // population std
  // exact binary ties round half to even like Python ('%.5f' % 0.015625 == '0.01562'), others to nearest
  assert.equal(formatFixed(0.015625, 5), '0.01562');
  assert.equal(formatFixed(0.046875, 5), '0.04688');
  assert.equal(formatFixed(0.99783333, 5), '0.99783');
  assert.equal(formatFixed(0.123455, 5), '0.12345'); // 0.123455 is stored just below the tie
  assert.equal(formatFixed(99.5, 0), '100');
  assert.equal(formatFixed(0.5, 0), '0');
  assert.equal(formatFixed(1, 2), '1.00');
  assert.equal(formatFixed(-0.25, 1), '-0.2');
});

test('flip-sum, L2 normalisation, XNorm over original and flipped, squared distances', () => {
  // 2 images (1 pair), dim 2
  const orig = [3, 4, 0, 1];
  const flip = [3, 4, 0, -1];
  // norms: 5, 1, 5, 1 -> XNorm = 3
  assert.equal(meanEmbeddingNorm([orig, flip], 2), 3);
  // sums [6, 8] -> [0.6, 0.8]; [0, 0] stays [0, 0] (sklearn normalize leaves zero rows)
  const e = flipSumNormalized(orig, flip, 2);
  assert.deepEqual([...e], [0.6, 0.8, 0, 0]);
  // squared distance = 0.36 + 0.64
  assert.ok(Math.abs(pairSquaredDistances(e, 2)[0] - 1) < 1e-15);
});

test('ROC with sklearn roc_curve semantics: ties form one point, intermediate points dropped', () => {
  const scores = DIST.map((d) => -d);
  // ascending distance -> (fps, tps): .2 (0,1) .3 (0,2) .5 (0,3) .6 (0,4) .8 (0,5) .9 (1,5) 1.0 (2,6) [tie: D1+S2 together]
  // 1.1 (2,7) 1.2 (3,7) 1.3 (4,7) 1.5 (5,7) 2.0 (6,7). Negatives 6, positives 7.
  const full = rocCurve(scores, SAME, { dropIntermediate: false });
  assert.deepEqual([...full.fpr].map((f) => f * 6), [0, 0, 0, 0, 0, 0, 1, 2, 2, 3, 4, 5, 6]);
  assert.deepEqual([...full.tpr].map((t) => Math.round(t * 7)), [0, 1, 2, 3, 4, 5, 5, 6, 7, 7, 7, 7, 7]);
  // drop_intermediate keeps index i when the second difference of fps or tps is non-zero:
  // kept (fps,tps): (0,1) (0,5) (1,5) (2,6) (2,7) (6,7), after the prepended (0,0)
  const roc = rocCurve(scores, SAME);
  assert.deepEqual([...roc.fpr].map((f) => f * 6), [0, 0, 0, 1, 2, 2, 6]);
  assert.deepEqual([...roc.tpr].map((t) => Math.round(t * 7)), [0, 1, 5, 5, 6, 7, 7]);
  assert.deepEqual([...roc.thresholds], [Infinity, -0.2, -0.8, -0.9, -1.0, -1.1, -2.0]);
  // AUC = 5/42 + 11/84 + 2/3 = 77/84 (= Mann-Whitney: (30 + 4 + 4 + 0.5 for the tie) / 42)
  assert.ok(Math.abs(rocAuc(roc) - 77 / 84) < 1e-15);
  assert.ok(Math.abs(rocAuc(full) - 77 / 84) < 1e-15);
});

test('TAR at FAR never splits a tie; the IJB reading takes the closest FPR, larger index on ties', () => {
  const full = rocCurve(DIST.map((d) => -d), SAME, { dropIntermediate: false });
  // FAR <= 1e-3 allows no false accept: accept d < 0.9 -> 5 of 7 same pairs
  assert.equal(tarAtFar(full, 1e-3), 5 / 7);
  // FAR <= 0.2 allows one false accept (D7 at 0.9). The next cut at 1.0 takes D1 and S2 together
  // (2/6 > 0.2), so S2 cannot be gained: still 5/7
  assert.equal(tarAtFar(full, 0.2), 5 / 7);
  assert.equal(tarAtFar(full, 2 / 6), 1);
  // insightface's IJB reading on the dropped curve: FPR 2/6 appears twice (TPR 6/7 and 1); the later wins
  const roc = rocCurve(DIST.map((d) => -d), SAME);
  assert.equal(tprAtClosestFpr(roc, 0.3), 1);
  assert.equal(tprAtClosestFpr(roc, 1e-6), 5 / 7); // FPR 0 appears with TPR 0, 1/7, 5/7: the last
  assert.throws(() => rocCurve([1, 2], [true, true]), /needs both positive and negative pairs/);
});

test('verificationMetrics runs the whole protocol from raw embeddings', () => {
  // 10 pairs in 1-D (dim 2 with a zero column): same pairs identical, different pairs opposite
  const orig: number[] = [];
  const flip: number[] = [];
  const same: boolean[] = [];
  for (let p = 0; p < 10; p++) {
    const s = p % 2 === 0;
    same.push(s);
    orig.push(1, 0, s ? 2 : -2, 0);
    flip.push(1, 0, s ? 2 : -2, 0);
  }
  const m = verificationMetrics(orig, flip, same, 2);
  assert.equal(m.pairs, 10);
  assert.equal(m.accuracy, 1);
  assert.equal(m.std, 0);
  assert.equal(m.xnorm, 1.5); // norms 1 and 2, equally often
  assert.equal(m.tarAtFar1e3AllPairs, 1);
  assert.equal(m.auc, 1);
  assert.deepEqual([...m.distances], same.map((s) => (s ? 0 : 4)));
});
