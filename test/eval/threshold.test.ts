// The verification threshold recorded with a model: the best cosine cut on a set's pairs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bestSimilarityThreshold, pairCosineSimilarities, readVerificationThreshold } from '../../src/eval/threshold.js';
import { Rng } from '../../src/util/rng.js';
import { AttfcError } from '../../src/errors.js';

const accuracyAt = (s: number[], same: boolean[], t: number) => s.filter((v, i) => v >= t === same[i]).length / s.length;

test('separable pairs: accuracy 1 with the cut halfway between the classes', () => {
  const r = bestSimilarityThreshold([0.9, 0.1, 0.7, 0.3], [true, false, true, false]);
  assert.equal(r.accuracy, 1);
  assert.equal(r.threshold, 0.5);
});

test('equal similarities are never split; the strictest of equally good cuts wins', () => {
  // 0.5 appears as a same and a different pair: either both are accepted or neither
  const r = bestSimilarityThreshold([0.5, 0.5, 0.8], [true, false, true]);
  assert.equal(r.accuracy, 2 / 3);
  assert.equal(r.threshold, 0.65); // accepting only 0.8 is as good as accepting all three, and stricter
  assert.equal(accuracyAt([0.5, 0.5, 0.8], [true, false, true], r.threshold), r.accuracy);
});

test('all same, all different', () => {
  const same = bestSimilarityThreshold([0.2, -0.1, 0.4], [true, true, true]);
  assert.deepEqual(same, { threshold: -0.1, accuracy: 1 });
  const diff = bestSimilarityThreshold([0.2, -0.1, 0.4], [false, false, false]);
  assert.equal(diff.accuracy, 1);
  assert.ok(diff.threshold > 0.4);
});

test('matches a brute-force search over every candidate cut (random sets)', () => {
  const rng = new Rng(7);
  for (let trial = 0; trial < 50; trial++) {
    const n = 1 + rng.int(60);
    const same = Array.from({ length: n }, () => rng.int(2) === 1);
    // coarse values so ties happen
    const s = same.map((v) => Math.round((rng.normal() * 0.3 + (v ? 0.4 : 0)) * 20) / 20);
    const r = bestSimilarityThreshold(s, same);
    const candidates = [...new Set(s)].concat([Math.max(...s) + 1]);
    const best = Math.max(...candidates.map((t) => accuracyAt(s, same, t)));
    assert.equal(r.accuracy, best, `trial ${trial}`);
    assert.equal(accuracyAt(s, same, r.threshold), r.accuracy, `trial ${trial}: the threshold achieves the reported accuracy`);
  }
});

test('adjacent doubles: the cut still separates them', () => {
  const hi = 0.5;
  const lo = 0.49999999999999994; // the double just below 0.5
  const r = bestSimilarityThreshold([hi, lo], [true, false]);
  assert.equal(r.accuracy, 1);
  assert.ok(hi >= r.threshold && lo < r.threshold);
});

test('pair cosine similarities of unnormalised rows; a zero row scores 0', () => {
  const emb = Float32Array.from([3, 4, 6, 8, 1, 0, 0, 1, 0, 0, 1, 1]);
  const s = pairCosineSimilarities(emb, 2);
  assert.equal(s.length, 3);
  assert.ok(Math.abs(s[0] - 1) < 1e-12);
  assert.equal(s[1], 0);
  assert.equal(s[2], 0);
});

test('reading the record: absent is null, malformed is a clear error', () => {
  assert.equal(readVerificationThreshold({}, 'm/model.json'), null);
  const rec = { threshold: 0.3, set: 'lfw', pairs: 6000, accuracy: 0.99, chosenBy: 'attfc eval' };
  assert.deepEqual(readVerificationThreshold({ verification: rec }, 'm/model.json'), rec);
  assert.throws(
    () => readVerificationThreshold({ verification: { threshold: 'high' } }, 'm/model.json'),
    (e: unknown) => e instanceof AttfcError && /^m\/model\.json: userDefinedMetadata\.verification\.threshold must be a number/.test(e.message),
  );
});
