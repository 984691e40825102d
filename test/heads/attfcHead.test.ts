// AttFC head on the cpu backend: loss and dL/dq against the plain-loop reference (single and multi
// chunk, resident and streamed), masking, target column, enqueue order, gradient flow, options.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { setupEngine } from '../helpers/engine.js';
import { AttFcHead, defaultQueueSize, estimateDeviceBytes, planPlacement } from '../../src/heads/attfc/index.js';
import { AttfcError } from '../../src/errors.js';
import { ARCFACE, type MarginOptions } from '../../src/heads/margin.js';
import { assertNoTensorLeak } from '../../src/engine/index.js';
import { Rng } from '../../src/util/rng.js';
import {
  type Scenario,
  dccSnapshot,
  headLossAndGrad,
  maxAbs,
  maxAbsDiff,
  referenceAttFc,
  referenceFor,
  scenarioBatch,
  warmupStep,
  makeHead,
} from './attfcFixtures.js';

await setupEngine({ backend: 'cpu' });

const SOFT: MarginOptions = { s: 16, m1: 1, m2: 0.3, m3: 0, gradient: 'straight-through' };
const SGD = { lr: 0.1, momentum: 0.9, weightDecay: 0 };


/** Warms the DCC up, then compares the head's loss and gradient with the reference on one batch. */
function checkAgainstReference(sc: Scenario): { maskedCount: number; head: AttFcHead } {
  const rng = new Rng(sc.seed + 1000);
  const head = makeHead(sc);
  for (let i = 0; i < sc.warmupSteps; i++) warmupStep(head, scenarioBatch(rng, sc), sc.sampleNum - 1);
  const b = scenarioBatch(rng, sc);
  const ref = referenceAttFc(referenceFor(head, b, sc));
  const got = headLossAndGrad(head, b, sc.sampleNum - 1);
  const tag = JSON.stringify({ chunk: sc.chunkSlots, budget: sc.deviceBudgetBytes, mask: sc.masking, s: sc.margin.s });
  assert.ok(Math.abs(got.loss - ref.loss) <= 1e-4 * Math.max(1, Math.abs(ref.loss)), `${tag} loss ${got.loss} vs reference ${ref.loss}`);
  const refGrad = ref.grad.flat();
  const scale = maxAbs(refGrad);
  assert.ok(scale > 1e-4, 'the case has a real gradient');
  assert.ok(maxAbsDiff(got.grad, refGrad) <= 2e-4 * scale, `${tag} dL/dq differs by ${maxAbsDiff(got.grad, refGrad)} (max |g| ${scale})`);
  const diag = head.diagnostics();
  assert.ok(Math.abs(diag.maskedFraction * sc.batch * sc.queueSize - ref.maskedCount) < 1e-6, `${tag} masked pairs`);
  assert.ok(Math.abs(diag.hardestNegCos - ref.hardestNegCos) < 1e-5, `${tag} hardest negative`);
  return { maskedCount: ref.maskedCount, head };
}

const base: Scenario = {
  batch: 6,
  dim: 8,
  numClasses: 5, // few identities: many same-label slots to mask
  queueSize: 24,
  sampleNum: 3,
  margin: SOFT,
  warmupSteps: 5,
  seed: 11,
};

test('loss and dL/dq equal the plain-loop reference: single chunk, and multi-chunk packed, resident, streamed and mixed', () => {
  const single = checkAgainstReference({ ...base });
  assert.ok(single.maskedCount > 0, 'the case exercises masking');
  const packed = checkAgainstReference({ ...base, chunkSlots: 5 }); // 5 chunks, the last one shorter
  assert.deepEqual(packed.head.chunkPlacements(), Array(5).fill('packed'));
  const streamed = checkAgainstReference({ ...base, chunkSlots: 7, deviceBudgetBytes: 0 });
  assert.deepEqual(streamed.head.chunkPlacements(), Array(4).fill('streamed'));
  // chunk bytes 10*8*4: all three resident and the first one packed, or two resident and one streamed
  const mixed = checkAgainstReference({ ...base, chunkSlots: 10, deviceBudgetBytes: (24 + 10) * 8 * 4 });
  assert.deepEqual(mixed.head.chunkPlacements(), ['packed', 'resident', 'resident']);
  assert.deepEqual(planPlacement([10, 10, 4], 8, (24 + 10) * 8 * 4), mixed.head.chunkPlacements());
  // resident: (24 + 10) slots of 8 floats; step temporaries: both layouts of a chunk, 3 x [c, B], 2 x [D, B]
  assert.equal(estimateDeviceBytes(24, 8, 6, 10, (24 + 10) * 8 * 4), (24 + 10) * 8 * 4 + (2 * 10 * 8 + 3 * 10 * 6 + 2 * 8 * 6) * 4);
  const partial = checkAgainstReference({ ...base, chunkSlots: 10, deviceBudgetBytes: 20 * 8 * 4 });
  assert.deepEqual(partial.head.chunkPlacements(), ['resident', 'resident', 'streamed']);
  checkAgainstReference({ ...base, chunkSlots: 5, margin: ARCFACE, seed: 12 });
  // s beyond singlePassFits: the online-softmax path (per-chunk maximum, rescaled sums)
  checkAgainstReference({ ...base, chunkSlots: 5, margin: { ...ARCFACE, s: 128 }, seed: 13 });
  checkAgainstReference({ ...base, chunkSlots: 7, deviceBudgetBytes: 0, margin: { ...ARCFACE, s: 100 }, seed: 14 });
});

test("masking removes exactly the same-label slots; masking off keeps them (matching the reference)", () => {
  const on = checkAgainstReference({ ...base, chunkSlots: 5, seed: 21 });
  const off = checkAgainstReference({ ...base, chunkSlots: 5, seed: 21, masking: false });
  assert.ok(on.maskedCount > 0);
  assert.equal(off.maskedCount, 0);
  assert.equal(off.head.diagnostics().maskedFraction, 0);
  // a same-label slot identical to the query: the hardest negative without masking, absent with it
  for (const masking of [true, false]) {
    const head = makeHead({ ...base, masking, queueSize: 12, chunkSlots: 4 });
    const q = new Float32Array(base.dim).fill(0);
    q[0] = 1;
    const other = new Float32Array(base.dim).fill(0);
    other[1] = 1;
    const centres = new Float32Array(12 * base.dim);
    for (let r = 0; r < 12; r++) centres.set(r === 2 ? q : other, r * base.dim);
    const slotLabels = new Int32Array(12); // label 0 everywhere but slot 2: label 3, equal to q
    slotLabels[2] = 3;
    head.queue.enqueue(centres, slotLabels);
    const labels = new Int32Array([3, 1, 1, 1, 1, 1]);
    const queries = new Float32Array(6 * base.dim);
    for (let r = 0; r < 6; r++) queries.set(q, r * base.dim);
    const keys = new Float32Array(12 * base.dim);
    for (let r = 0; r < 12; r++) keys.set(other, r * base.dim);
    tf.tidy(() => {
      head.loss({ embeddings: tf.tensor2d(queries, [6, base.dim]), labels, keyEmbeddings: tf.tensor2d(keys, [12, base.dim]) });
    });
    const d = head.diagnostics();
    assert.ok(Math.abs(d.maskedFraction - (masking ? 1 : 0) / (6 * 12)) < 1e-9);
    // with masking, row 0 no longer sees cos 1; rows 1..5 always do
    const expectHardest = masking ? (0 + 5 * 1) / 6 : 1;
    assert.ok(Math.abs(d.hardestNegCos - expectHardest) < 1e-6, `masking ${masking}: hardest ${d.hardestNegCos}`);
    head.dispose();
  }
});

test('column 0 is the target: the loss falls as q moves towards its GCC and rises towards a DCC slot', () => {
  const sc = { ...base, masking: false };
  const head = makeHead(sc);
  const rng = new Rng(3);
  const b = scenarioBatch(rng, sc);
  const { grad } = headLossAndGrad(head, b, 2);
  const ref = referenceAttFc(referenceFor(head, b, sc));
  // descending the gradient raises q.c (the target column's cosine) for every sample
  const D = sc.dim;
  for (let i = 0; i < sc.batch; i++) {
    let gDotC = 0;
    for (let d = 0; d < D; d++) gDotC += grad[i * D + d] * ref.centres[i][d];
    assert.ok(gDotC < 0, `sample ${i}: dL/dq . c = ${gDotC} should be negative`);
  }
  // the loss is exactly -log softmax at column 0: a query equal to its GCC has a small loss
  const aligned = { ...b, queries: Float32Array.from(ref.centres.flat()) };
  const lossAligned = headLossAndGrad(head, aligned, 2).loss;
  assert.ok(lossAligned < headLossAndGrad(head, b, 2).loss);
  head.dispose();
});

test('a few SGD steps on the embeddings lower the loss, with the DCC filling with real GCCs (as full FC has)', () => {
  // 6 samples of 6 identities out of 12; each brings 2 keys near its identity's centre. The DCC (24
  // slots) fills with the batch's GCCs after every step: other identities' centres become negatives.
  const B = 6;
  const D = 8;
  const K = 3;
  const N = 12;
  const rng = new Rng(4);
  const centres = Array.from({ length: N }, () => Array.from({ length: D }, () => rng.normal()));
  const labels = Int32Array.from([0, 1, 2, 3, 4, 5]);
  const keys = new Float32Array(B * (K - 1) * D);
  for (let i = 0; i < B; i++)
    for (let j = 0; j < K - 1; j++) for (let d = 0; d < D; d++) keys[(i * (K - 1) + j) * D + d] = centres[labels[i]][d] + rng.normal() * 0.5;
  const head = new AttFcHead({ numClasses: N, embeddingSize: D, batchSize: B, sampleNum: K, queueSize: 24, margin: SOFT, seed: 5 });
  const x = tf.variable(tf.tensor2d(Float32Array.from({ length: B * D }, () => rng.normal()), [B, D]));
  const keyEmbeddings = tf.tensor2d(keys, [B * (K - 1), D]);
  const opt = tf.train.sgd(0.2);
  const losses: number[] = [];
  for (let step = 0; step < 15; step++) {
    head.prepare(labels);
    const cost = opt.minimize(() => head.loss({ embeddings: x, labels, keyEmbeddings }), true, [x]);
    losses.push(cost!.dataSync()[0]);
    cost!.dispose();
    head.afterStep([], { lr: 0.2, momentum: 0, weightDecay: 0 });
  }
  // measured on the cpu backend: 13.05 -> 0.82 over these 15 steps
  assert.ok(losses[14] < losses[0] * 0.5, `losses ${losses.map((l) => l.toFixed(2)).join(' ')}`);
  assert.equal(head.diagnostics().dccFill, 1);
  opt.dispose();
  tf.dispose([x, keyEmbeddings]);
  head.dispose();
});

test('enqueue happens in afterStep, after the loss: a batch never meets its own GCCs as negatives', () => {
  const sc = { ...base, masking: false, queueSize: 12, chunkSlots: 4 };
  const head = makeHead(sc);
  const b = scenarioBatch(new Rng(4), sc);
  const before = dccSnapshot(head);
  const first = headLossAndGrad(head, b, 2).loss;
  assert.deepEqual(dccSnapshot(head), before, 'loss() does not touch the DCC');
  assert.equal(headLossAndGrad(head, b, 2).loss, first, 'a second loss() sees the same DCC');
  const reference = referenceAttFc(referenceFor(head, b, sc));
  assert.ok(Math.abs(first - reference.loss) < 1e-4 * Math.max(1, reference.loss));
  head.afterStep([], SGD); // enqueues both pending loss() batches, in order
  const after = dccSnapshot(head);
  assert.equal(after.pointer, 0);
  assert.equal(after.filled, 12);
  for (let r = 0; r < 12; r++) {
    assert.equal(after.labels[r], b.labels[r % 6]);
    assert.ok(maxAbsDiff(after.vectors[r], reference.centres[r % 6]) < 1e-5);
  }
  // now the GCCs are negatives (masking off): the same batch's loss is higher
  assert.ok(headLossAndGrad(head, b, 2).loss > first + 1);
  head.dispose();
});

test('only q gets gradients: none reach the key embeddings, and backward leaves the DCC unchanged', () => {
  const sc = { ...base, chunkSlots: 5 };
  const head = makeHead(sc);
  const rng = new Rng(5);
  warmupStep(head, scenarioBatch(rng, sc), 2);
  const b = scenarioBatch(rng, sc);
  const q = tf.variable(tf.tensor2d(b.queries, [6, 8]));
  const keys = tf.variable(tf.tensor2d(b.keys, [12, 8]));
  const before = dccSnapshot(head);
  const { value, grads } = tf.variableGrads(() => head.loss({ embeddings: q, labels: b.labels, keyEmbeddings: keys }), [q, keys]);
  assert.deepEqual(Object.keys(grads), [q.name]);
  assert.ok(maxAbs(grads[q.name].dataSync()) > 0);
  assert.deepEqual(dccSnapshot(head), before);
  assert.deepEqual(head.trainableVariables(), []);
  assert.deepEqual(head.stepVariables(), []);
  tf.dispose([value, grads, q, keys]);
  head.dispose();
});

test('sampleNum 2 (DCQ: one key, no attention) matches the reference', () => {
  checkAgainstReference({ ...base, sampleNum: 2, chunkSlots: 5 });
  checkAgainstReference({ ...base, sampleNum: 4, attention: 'mean', chunkSlots: 5 });
  checkAgainstReference({ ...base, sampleNum: 4, attention: 'single', chunkSlots: 5 });
  checkAgainstReference({ ...base, sampleNum: 3, temperature: 0.2 });
});

test('queue size: default 30% of N rounded down to a multiple of B; non-multiples and zero are errors', () => {
  assert.equal(defaultQueueSize(2059906, 128), 617856);
  assert.equal(defaultQueueSize(93431, 384), 27648);
  assert.throws(
    () => new AttFcHead({ numClasses: 100, embeddingSize: 8, batchSize: 8, queueSize: 20, seed: 1 }),
    (e: unknown) => e instanceof AttfcError && /queueSize 20 must be a positive multiple of the batch size 8/.test(e.message),
  );
  assert.throws(
    () => new AttFcHead({ numClasses: 100, embeddingSize: 8, batchSize: 128, seed: 1 }),
    (e: unknown) => e instanceof AttfcError && /floor\(0\.3 \* 100 classes \/ batch 128\) \* 128 = 0/.test(e.message),
  );
  assert.throws(() => new AttFcHead({ numClasses: 100, embeddingSize: 8, batchSize: 8, sampleNum: 1, seed: 1 }), /sampleNum/);
  const h = new AttFcHead({ numClasses: 100, embeddingSize: 8, batchSize: 5, seed: 1 });
  assert.equal(h.queueSize, 30);
  h.dispose();
});

test('diagnostics, state round trip and user errors', () => {
  const sc = { ...base, chunkSlots: 5 };
  const head = makeHead(sc);
  const rng = new Rng(6);
  warmupStep(head, scenarioBatch(rng, sc), 2);
  const d = head.diagnostics();
  for (const k of ['loss', 'positiveCos', 'hardestNegCos', 'attentionMax', 'attentionEntropy', 'maskedFraction', 'dccFill'])
    assert.ok(Number.isFinite(d[k]), `${k} = ${d[k]}`);
  assert.equal(d.dccFill, 6 / 24);
  assert.equal(head.stateBytes() >= 2 * 24 * 8 * 4 + 24 * 4, true);

  const copy = makeHead({ ...sc, seed: 99, chunkSlots: 7 });
  copy.setState(head.getState());
  const b = scenarioBatch(rng, sc);
  assert.ok(Math.abs(headLossAndGrad(copy, b, 2).loss - headLossAndGrad(head, b, 2).loss) < 1e-5);
  assert.deepEqual(dccSnapshot(copy).labels, dccSnapshot(head).labels);
  const wrong = makeHead({ ...sc, queueSize: 30 });
  assert.throws(() => wrong.setState(head.getState()), /queueSize 24 x embedding 8, expected 30 x 8/);

  assert.throws(
    () => tf.tidy(() => head.loss({ embeddings: tf.zeros([6, 8]), labels: new Int32Array([0, 1, 2, 3, 4, 5]), keyEmbeddings: tf.zeros([12, 8]) })),
    (e: unknown) => e instanceof AttfcError && /label 5 \(batch row 5\)/.test(e.message),
  );
  assert.throws(() => tf.tidy(() => head.loss({ embeddings: tf.zeros([6, 8]), labels: new Int32Array(6) })), /keyEmbeddings/);
  [head, copy, wrong].forEach((h) => h.dispose());
});

test('no tensor leak per training step (variableGrads + afterStep), resident and streamed', async () => {
  for (const extra of [{ chunkSlots: 6 }, { chunkSlots: 6, deviceBudgetBytes: 0 }, { chunkSlots: 6, deviceBudgetBytes: 24 * 8 * 4 }, {}]) {
    const sc = { ...base, ...extra };
    const head = makeHead(sc);
    const rng = new Rng(7);
    const q = tf.variable(tf.zeros([6, 8]) as tf.Tensor2D);
    const keys = tf.variable(tf.zeros([12, 8]) as tf.Tensor2D);
    const step = () => {
      const b = scenarioBatch(rng, sc);
      tf.tidy(() => {
        q.assign(tf.tensor2d(b.queries, [6, 8]));
        keys.assign(tf.tensor2d(b.keys, [12, 8]));
      });
      const { value, grads } = tf.variableGrads(() => head.loss({ embeddings: q, labels: b.labels, keyEmbeddings: keys }), [q]);
      tf.dispose([value, grads]);
      head.afterStep([], SGD);
    };
    // resident chunks come and go as the write pointer passes: count them out
    const counted = () => tf.memory().numTensors - head.residentChunks();
    step();
    const start = counted();
    for (let i = 0; i < 8; i++) {
      step();
      assert.equal(counted(), start, `${JSON.stringify(extra)} step ${i}`);
    }
    await assertNoTensorLeak(step, 3, 2, 'attfc step');
    head.dispose();
    q.dispose();
    keys.dispose();
  }
});
