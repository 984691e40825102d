import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { setupEngine } from '../helpers/engine.js';
import { PartialFcHead, estimatePartialFcHeap, partialFcSampleSize } from '../../src/heads/partialFc.js';
import { FullFcHead } from '../../src/heads/fullFc.js';
import { ARCFACE, type MarginOptions } from '../../src/heads/margin.js';
import { refFcLoss, refSgdMomentumStep } from '../../src/heads/reference.js';
import type { HeadState, SgdSettings } from '../../src/heads/types.js';
import { assertNoTensorLeak } from '../../src/engine/index.js';
import { AttfcError } from '../../src/errors.js';
import { Rng } from '../../src/util/rng.js';

await setupEngine();

const B = 6;
const D = 8;
const N = 20;
const LABELS = new Int32Array([3, 17, 3, 0, 19, 17]);
const SGD: SgdSettings = { lr: 0.1, momentum: 0.9, weightDecay: 5e-4 };

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

/** The head's W or momentum as one flat [N, D] array (concatenating its chunks). */
function flat(state: HeadState, name: 'W' | 'momentum'): Float32Array {
  const parts: Float32Array[] = [];
  for (let i = 0; state.arrays[`${name}.${i}`]; i++) parts.push(state.arrays[`${name}.${i}`] as Float32Array);
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function rowsOf(a: Float32Array, cols: number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < a.length; i += cols) out.push(Array.from(a.subarray(i, i + cols)));
  return out;
}

/** One full step as the trainer runs it; returns the loss. */
function step(head: PartialFcHead, x: tf.Variable, labels: Int32Array, sgd = SGD): number {
  head.prepare(labels);
  const [wsub] = head.stepVariables();
  const { value, grads } = tf.variableGrads(() => head.loss({ embeddings: x as tf.Tensor2D, labels }), [x, wsub]);
  head.afterStep([grads[wsub.name]], sgd);
  const loss = value.dataSync()[0];
  tf.dispose([value, ...Object.values(grads)]);
  return loss;
}

test('at r = 1: same loss and gradients as the plain-loop reference and as FullFC', () => {
  for (const margin of [ARCFACE, { ...ARCFACE, gradient: 'exact' } as MarginOptions]) {
    const head = new PartialFcHead({ numClasses: N, embeddingSize: D, sampleRate: 1, margin, seed: 7, rowsPerChunk: 6 });
    const w = flat(head.getState(), 'W');
    const emb = randomRows(new Rng(11), B, D);
    const ref = refFcLoss(emb, rowsOf(w, D), Array.from(LABELS), margin);

    head.prepare(LABELS);
    assert.deepEqual(Array.from(head.lastSample()!.classes), Array.from({ length: N }, (_, i) => i));
    const x = tf.variable(tf.tensor2d(emb));
    const [wsub] = head.stepVariables();
    assert.deepEqual(wsub.shape, [N, D]);
    assertClose(wsub.dataSync(), w, 'uploaded Wsub', 0, 0);
    const { value, grads } = tf.variableGrads(() => head.loss({ embeddings: x, labels: LABELS }), [x, wsub]);
    assertClose([value.dataSync()[0]], [ref.loss], `${margin.gradient} loss`);
    assertClose(grads[x.name].dataSync(), ref.dEmbeddings.flat(), `${margin.gradient} dL/dx`, 1e-3, 1e-5);
    assertClose(grads[wsub.name].dataSync(), ref.dCentres.flat(), `${margin.gradient} dL/dWsub`, 1e-3, 1e-5);

    // FullFC with the same centres gives the same loss
    const fc = new FullFcHead({ numClasses: N, embeddingSize: D, margin, seed: 1 });
    fc.setState({ arrays: { W: w }, json: {} });
    const fcLoss = tf.tidy(() => fc.loss({ embeddings: x, labels: LABELS }).dataSync()[0]);
    assertClose([fcLoss], [value.dataSync()[0]], 'FullFC loss', 1e-6, 1e-6);

    head.afterStep([grads[wsub.name]], SGD);
    tf.dispose([x, value, ...Object.values(grads)]);
    head.dispose();
    fc.dispose();
  }
});

test('sampling: every positive, max(#positives, round(r*N)) sorted distinct classes, targets point at the labels', () => {
  const numClasses = 50;
  for (const sampleRate of [0.1, 0.33, 0.9]) {
    const head = new PartialFcHead({ numClasses, embeddingSize: 4, sampleRate, seed: 21, rowsPerChunk: 7 });
    const numSample = Math.round(sampleRate * numClasses);
    assert.equal(head.numSample, numSample);
    const rng = new Rng(99);
    for (let trial = 0; trial < 150; trial++) {
      // batches from small pools (many duplicates, fewer positives than numSample) and large ones
      const pool = 1 + rng.int(trial % 2 === 0 ? 4 : numClasses);
      const base = rng.int(numClasses);
      const labels = new Int32Array(1 + rng.int(12)).map(() => (base + rng.int(pool)) % numClasses);
      head.prepare(labels);
      const { classes, targets } = head.lastSample()!;
      const positives = new Set(labels);
      assert.equal(classes.length, Math.max(positives.size, numSample), `trial ${trial}: count`);
      for (let j = 1; j < classes.length; j++) assert.ok(classes[j] > classes[j - 1], `trial ${trial}: ascending and distinct`);
      assert.ok(classes[0] >= 0 && classes[classes.length - 1] < numClasses);
      for (let i = 0; i < labels.length; i++) assert.equal(classes[targets[i]], labels[i], `trial ${trial}: target of row ${i}`);
      assert.deepEqual(head.stepVariables()[0].shape, [classes.length, 4]);
    }
    head.dispose();
  }
});

test('negatives are drawn uniformly', () => {
  const head = new PartialFcHead({ numClasses: 20, embeddingSize: 2, sampleRate: 0.5, seed: 5 });
  const labels = new Int32Array([0, 1, 1]);
  const counts = new Array<number>(20).fill(0);
  const trials = 1500;
  for (let t = 0; t < trials; t++) {
    head.prepare(labels);
    for (const c of head.lastSample()!.classes) counts[c]++;
  }
  assert.equal(counts[0], trials);
  assert.equal(counts[1], trials);
  // 8 of the 18 negatives per step: expected 1500 * 8/18 = 667 each (sd ~19)
  for (let c = 2; c < 20; c++) assert.ok(Math.abs(counts[c] - (trials * 8) / 18) < 100, `class ${c} drawn ${counts[c]} times`);
  head.dispose();
});

test('afterStep: PyTorch momentum SGD on the sampled rows only, across chunks and steps', () => {
  const numClasses = 30;
  const dim = 4;
  const head = new PartialFcHead({ numClasses, embeddingSize: dim, sampleRate: 0.2, seed: 3, rowsPerChunk: 7 });
  // known starting W and non-zero momentum, handed in as one chunk (any chunking is accepted)
  const rng = new Rng(8);
  const w = Array.from({ length: numClasses * dim }, () => rng.normal());
  const v = Array.from({ length: numClasses * dim }, () => 0.1 * rng.normal());
  head.setState({ arrays: { 'W.0': Float32Array.from(w), 'momentum.0': Float32Array.from(v) }, json: { numClasses, embeddingSize: dim } });
  for (let s = 0; s < 3; s++) {
    const labels = new Int32Array([s, 12, 29, s + 7]);
    head.prepare(labels);
    const { classes } = head.lastSample()!;
    const g = Array.from({ length: classes.length * dim }, () => rng.normal());
    const grad = tf.tensor2d(g, [classes.length, dim]);
    const sgd = { lr: 0.05 * (s + 1), momentum: 0.9, weightDecay: 0.01 };
    head.afterStep([grad], sgd);
    grad.dispose();
    assert.deepEqual(head.stepVariables(), [], 'Wsub is released');
    // hand computation: v = mu*v + (g + wd*w); w -= lr*v on each sampled row
    classes.forEach((c, j) => {
      const wr = w.slice(c * dim, (c + 1) * dim);
      const vr = v.slice(c * dim, (c + 1) * dim);
      refSgdMomentumStep(wr, vr, g.slice(j * dim, (j + 1) * dim), sgd);
      w.splice(c * dim, dim, ...wr);
      v.splice(c * dim, dim, ...vr);
    });
    const state = head.getState();
    const gotW = flat(state, 'W');
    const gotV = flat(state, 'momentum');
    for (let c = 0; c < numClasses; c++) {
      const sampled = classes.includes(c);
      for (let d = 0; d < dim; d++) {
        const i = c * dim + d;
        if (sampled) {
          assert.ok(Math.abs(gotW[i] - w[i]) < 1e-5 && Math.abs(gotV[i] - v[i]) < 1e-5, `step ${s} class ${c}: w ${gotW[i]} vs ${w[i]}, v ${gotV[i]} vs ${v[i]}`);
        } else {
          // untouched, bit for bit
          assert.equal(gotW[i], Math.fround(w[i]), `step ${s}: unsampled class ${c} W changed`);
          assert.equal(gotV[i], Math.fround(v[i]), `step ${s}: unsampled class ${c} momentum changed`);
        }
      }
    }
    // keep the float64 model in step with the float32 head
    gotW.forEach((x, i) => (w[i] = x));
    gotV.forEach((x, i) => (v[i] = x));
  }
  head.dispose();
});

test('a training step leaks no tensors, and steps pull the centres to their samples', async () => {
  const head = new PartialFcHead({ numClasses: 40, embeddingSize: D, sampleRate: 0.3, seed: 9 });
  const x = tf.variable(tf.tensor2d(randomRows(new Rng(4), B, D)));
  await assertNoTensorLeak(
    () => {
      step(head, x, LABELS);
      head.diagnostics();
    },
    3,
    1,
    'PartialFcHead step',
  );
  // the loss itself jumps with each step's negatives; the positives' cosine must climb
  head.setState(new PartialFcHead({ numClasses: 40, embeddingSize: D, sampleRate: 0.3, seed: 9 }).getState());
  const positiveCos: number[] = [];
  for (let s = 0; s < 15; s++) {
    step(head, x, LABELS, { lr: 0.01, momentum: 0.9, weightDecay: 0 });
    positiveCos.push(head.diagnostics().positiveCos);
  }
  assert.ok(positiveCos[14] > positiveCos[0] + 0.3, `positive cosines ${positiveCos.map((l) => l.toFixed(2)).join(' ')}`);
  const diag = head.diagnostics();
  assert.equal(diag.sampledClasses, 12);
  assert.ok(Number.isFinite(diag.positiveCos) && Number.isFinite(diag.hardestNegCos));
  x.dispose();
  head.dispose();
});

test('state: same seed, same stream; a restored head continues exactly', () => {
  const a = new PartialFcHead({ numClasses: 60, embeddingSize: 4, sampleRate: 0.25, seed: 12 });
  const x = tf.variable(tf.tensor2d(randomRows(new Rng(1), 4, 4)));
  const labels = new Int32Array([1, 5, 5, 40]);
  step(a, x, labels);
  step(a, x, labels);
  // restore into a head built with another seed and a different chunking
  const b = new PartialFcHead({ numClasses: 60, embeddingSize: 4, sampleRate: 0.25, seed: 999, rowsPerChunk: 11 });
  const saved = a.getState();
  // json goes through JSON as in a checkpoint (the sampler's NaN spare becomes null)
  b.setState({ arrays: saved.arrays, json: JSON.parse(JSON.stringify(saved.json)) });
  assert.deepEqual(flat(b.getState(), 'W'), flat(saved, 'W'));
  for (let s = 0; s < 3; s++) {
    const la = step(a, x, labels);
    const lb = step(b, x, labels);
    assert.deepEqual(a.lastSample(), b.lastSample(), `step ${s}: same sample`);
    assert.equal(la, lb);
  }
  assert.deepEqual(flat(a.getState(), 'W'), flat(b.getState(), 'W'));
  assert.deepEqual(flat(a.getState(), 'momentum'), flat(b.getState(), 'momentum'));
  assert.equal(a.stateBytes(), 2 * 60 * 4 * 4);
  x.dispose();
  a.dispose();
  b.dispose();
});

test('misuse: bad sample rate and state are user errors; loss needs prepare with the same labels', () => {
  assert.throws(() => new PartialFcHead({ numClasses: N, embeddingSize: D, sampleRate: 0, seed: 1 }), (e: unknown) => e instanceof AttfcError && /sampleRate/.test(e.message));
  assert.throws(() => new PartialFcHead({ numClasses: N, embeddingSize: D, sampleRate: 1.5, seed: 1 }), AttfcError);
  const head = new PartialFcHead({ numClasses: N, embeddingSize: D, sampleRate: 0.5, seed: 1 });
  const x = tf.zeros([B, D]) as tf.Tensor2D;
  assert.throws(() => head.loss({ embeddings: x, labels: LABELS }), /before prepare/);
  head.prepare(LABELS);
  assert.throws(() => head.loss({ embeddings: x, labels: LABELS.map((y) => (y + 1) % N) }), /differ/);
  assert.throws(() => head.prepare(new Int32Array([-1])), (e: unknown) => e instanceof AttfcError && /label -1/.test(e.message));
  assert.throws(
    () => head.setState({ arrays: { 'W.0': new Float32Array(3), 'momentum.0': new Float32Array(3) }, json: { numClasses: N, embeddingSize: D } }),
    (e: unknown) => e instanceof AttfcError && /W\.\* hold 3 values, expected 160/.test(e.message),
  );
  x.dispose();
  head.dispose();
});

test('a sample that cannot fit the WASM heap is refused before anything is allocated, with a rate that fits', () => {
  if (tf.getBackend() !== 'wasm') return;
  const before = tf.memory().numBytes;
  // r = 0.3 of 500k: 150,000 centres per step; XNNPACK's own allocation failed silently there
  assert.throws(
    () => new PartialFcHead({ numClasses: 500_000, embeddingSize: 512, sampleRate: 0.3, seed: 1, batchSize: 128 }),
    (e: unknown) => e instanceof AttfcError && /sampling 150,000 of 500,000 classes per step .* needs about 5\.\d+ GiB .* use --sample-rate 0\.2\d* or lower/.test(e.message),
  );
  assert.equal(tf.memory().numBytes, before);
  assert.ok(estimatePartialFcHeap(partialFcSampleSize(1_000_000, 0.1, 128), 512, 128) < 0.95 * 4 * 2 ** 30, 'r = 0.1 at 1M ran (3.29 GiB measured) and must stay allowed');
});
