import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { setupEngine } from '../helpers/engine.js';
import { FullFcHead, estimateFullFcHeap } from '../../src/heads/fullFc.js';
import { ARCFACE, type MarginOptions } from '../../src/heads/margin.js';
import { refFcLoss } from '../../src/heads/reference.js';
import { assertNoTensorLeak, wasmHeapBytes } from '../../src/engine/index.js';
import { AttfcError } from '../../src/errors.js';
import { Rng } from '../../src/util/rng.js';

const engine = await setupEngine();

const B = 6;
const D = 8;
const N = 20;

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, rel = 1e-4, abs = 1e-5): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const tol = abs + rel * Math.abs(expected[i]);
    assert.ok(Math.abs(actual[i] - expected[i]) <= tol, `${what}[${i}]: got ${actual[i]}, expected ${expected[i]} (tol ${tol})`);
  }
}

function randomRows(rng: Rng, rows: number, cols: number): number[][] {
  return Array.from({ length: rows }, () => Array.from({ length: cols }, () => rng.normal()));
}

function rowsOf(flat: Float32Array, cols: number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < flat.length; i += cols) out.push(Array.from(flat.subarray(i, i + cols)));
  return out;
}

/** Labels with duplicates: drawn from a pool smaller than the batch. */
const LABELS = new Int32Array([3, 17, 3, 0, 19, 17]);

test('loss and gradients (embeddings and W) equal the plain-loop reference', () => {
  for (const margin of [ARCFACE, { ...ARCFACE, gradient: 'exact' } as MarginOptions, { s: 30, m1: 1, m2: 0.2, m3: 0.15, gradient: 'exact' } as MarginOptions]) {
    const head = new FullFcHead({ numClasses: N, embeddingSize: D, margin, seed: 7 });
    const emb = randomRows(new Rng(11), B, D);
    const centres = rowsOf(head.getState().arrays.W as Float32Array, D);
    const ref = refFcLoss(emb, centres, Array.from(LABELS), margin);

    const x = tf.variable(tf.tensor2d(emb));
    head.prepare(LABELS);
    const { value, grads } = tf.variableGrads(() => head.loss({ embeddings: x, labels: LABELS }), [x, ...head.trainableVariables()]);
    const what = `${margin.gradient} m2=${margin.m2} m3=${margin.m3}`;
    assertClose([value.dataSync()[0]], [ref.loss], `${what} loss`);
    assertClose(grads[x.name].dataSync(), ref.dEmbeddings.flat(), `${what} dL/dx`, 1e-3, 1e-5);
    assertClose(grads[head.weight.name].dataSync(), ref.dCentres.flat(), `${what} dL/dW`, 1e-3, 1e-5);

    // diagnostics: mean own-class cosine and mean hardest other cosine
    const pos = ref.cos.reduce((a, row, i) => a + row[LABELS[i]], 0) / B;
    const neg = ref.cos.reduce((a, row, i) => a + Math.max(...row.filter((_, j) => j !== LABELS[i])), 0) / B;
    const diag = head.diagnostics();
    assertClose([diag.positiveCos, diag.hardestNegCos], [pos, neg], `${what} diagnostics`);

    tf.dispose([x, value, ...Object.values(grads)]);
    head.dispose();
  }
});

test('W is [N, D], initialised normal(0, 0.01), reproducible from the seed', () => {
  const a = new FullFcHead({ numClasses: 500, embeddingSize: 16, seed: 3 });
  const b = new FullFcHead({ numClasses: 500, embeddingSize: 16, seed: 3 });
  const c = new FullFcHead({ numClasses: 500, embeddingSize: 16, seed: 4 });
  assert.deepEqual(a.weight.shape, [500, 16]);
  const wa = a.getState().arrays.W as Float32Array;
  assert.deepEqual(wa, b.getState().arrays.W);
  assert.notDeepEqual(wa, c.getState().arrays.W);
  let sum = 0;
  let sq = 0;
  for (const v of wa) {
    sum += v;
    sq += v * v;
  }
  const mean = sum / wa.length;
  const std = Math.sqrt(sq / wa.length - mean * mean);
  assert.ok(Math.abs(mean) < 5e-4 && Math.abs(std - 0.01) < 5e-4, `mean ${mean}, std ${std}`);
  assert.equal(a.stateBytes(), 2 * 500 * 16 * 4);
  for (const h of [a, b, c]) h.dispose();
});

test('getState/setState round-trip; wrong sizes and bad labels are user errors', () => {
  const a = new FullFcHead({ numClasses: N, embeddingSize: D, seed: 1 });
  const b = new FullFcHead({ numClasses: N, embeddingSize: D, seed: 2 });
  const state = a.getState();
  b.setState(state);
  assert.deepEqual(b.getState().arrays.W, state.arrays.W);
  // the state is a copy: changing it does not change the head
  (state.arrays.W as Float32Array)[0] += 1;
  assert.notEqual((a.getState().arrays.W as Float32Array)[0], (state.arrays.W as Float32Array)[0]);
  assert.throws(() => b.setState({ arrays: { W: new Float32Array(5) }, json: {} }), (e: unknown) => e instanceof AttfcError && /W has 5/.test(e.message));
  assert.throws(() => a.prepare(new Int32Array([1, 20])), (e: unknown) => e instanceof AttfcError && /label 20 \(batch row 1\)/.test(e.message));
  assert.throws(() => new FullFcHead({ numClasses: 1, embeddingSize: D, seed: 1 }), AttfcError);
  a.dispose();
  b.dispose();
});

test('a few SGD steps on W and the embeddings lower the loss', () => {
  const head = new FullFcHead({ numClasses: N, embeddingSize: D, seed: 5 });
  const x = tf.variable(tf.tensor2d(randomRows(new Rng(2), B, D)));
  const opt = tf.train.sgd(0.05);
  const losses: number[] = [];
  for (let step = 0; step < 15; step++) {
    head.prepare(LABELS);
    const cost = opt.minimize(() => head.loss({ embeddings: x, labels: LABELS }), true, [x, head.weight]);
    losses.push(cost!.dataSync()[0]);
    cost!.dispose();
  }
  assert.ok(losses[14] < losses[0] * 0.5, `losses ${losses.map((l) => l.toFixed(2)).join(' ')}`);
  opt.dispose();
  x.dispose();
  head.dispose();
});

test('a training step leaks no tensors (variableGrads, momentum optimizer, afterStep, diagnostics)', async () => {
  const head = new FullFcHead({ numClasses: N, embeddingSize: D, seed: 9 });
  const x = tf.variable(tf.tensor2d(randomRows(new Rng(4), B, D)));
  const opt = tf.train.momentum(0.1, 0.9);
  const sgd = { lr: 0.1, momentum: 0.9, weightDecay: 5e-4 };
  await assertNoTensorLeak(
    () => {
      head.prepare(LABELS);
      const { value, grads } = tf.variableGrads(() => head.loss({ embeddings: x, labels: LABELS }), [x, ...head.trainableVariables()]);
      opt.applyGradients([{ name: head.weight.name, tensor: grads[head.weight.name] }]);
      head.afterStep([], sgd);
      head.diagnostics();
      tf.dispose([value, ...Object.values(grads)]);
    },
    3,
    1,
    'FullFcHead step',
  );
  opt.dispose();
  x.dispose();
  head.dispose();
});

test('too many classes for the WASM heap: a clear AttfcError before anything is allocated', { skip: engine.backend !== 'wasm' && 'needs the wasm backend' }, () => {
  const before = { tensors: tf.memory().numTensors, bytes: tf.memory().numBytes, heap: wasmHeapBytes() };
  const t0 = Date.now();
  assert.throws(
    () => new FullFcHead({ numClasses: 3_000_000, embeddingSize: 512, seed: 1 }),
    (e: unknown) =>
      e instanceof AttfcError && /3000000 classes x embedding 512/.test(e.message) && /GiB/.test(e.message) && /--head pfc/.test(e.message) && !e.message.includes('\n'),
  );
  // no 1.5e9-value initialisation ran, and nothing reached the heap
  assert.ok(Date.now() - t0 < 2000);
  assert.deepEqual({ tensors: tf.memory().numTensors, bytes: tf.memory().numBytes, heap: wasmHeapBytes() }, before);
  // a size that fits is accepted by the same check
  const est = estimateFullFcHeap(3_000_000, 512, 64);
  assert.equal(est.weights, 3_000_000 * 512 * 4);
  assert.equal(est.total, 15 * est.weights + 4 * 64 * 3_000_000 * 4);
  assert.ok(estimateFullFcHeap(20_000, 512, 64).total < 2 ** 32);
});
