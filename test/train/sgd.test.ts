import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { setupEngine } from '../helpers/engine.js';
import { Sgd, clipByGlobalNorm } from '../../src/train/sgd.js';

await setupEngine();

for (const backend of ['wasm', 'cpu']) {
  test(`SGD: decay added before momentum, PyTorch semantics, two steps by hand (${backend})`, async () => {
    await tf.setBackend(backend);
    const w = tf.variable(tf.tensor1d([1, -2]));
    const sgd = new Sgd([w], { momentum: 0.9, weightDecay: 0.1 });
    const g = tf.tensor1d([0.5, 1]);
    sgd.step([g], 0.1); // v = g + 0.1w = [0.6, 0.8]; w = [0.94, -2.08]
    sgd.step([g], 0.1); // v = 0.9v + g + 0.1w = [0.54+0.5+0.094, 0.72+1-0.208] = [1.134, 1.512]; w = [0.8266, -2.2312]
    const got = Array.from(w.dataSync());
    const vel = Array.from(sgd.momentumBuffers()[0].dataSync());
    [0.8266, -2.2312].forEach((e, i) => assert.ok(Math.abs(got[i] - e) < 1e-6, `w ${got}`));
    [1.134, 1.512].forEach((e, i) => assert.ok(Math.abs(vel[i] - e) < 1e-6, `v ${vel}`));
    sgd.dispose();
    tf.dispose([w, g]);
  });
}

test('clipByGlobalNorm scales every gradient by maxNorm / global norm', async () => {
  await tf.setBackend('wasm');
  const r = clipByGlobalNorm([tf.tensor1d([3, 0]), tf.tensor1d([0, 4])], 1);
  assert.ok(Math.abs(r.norm - 5) < 1e-6);
  assert.deepEqual(r.grads.map((t) => Array.from(t.dataSync()).map((v) => +v.toFixed(6))), [[0.6, 0], [0, 0.8]]);
});

test('an optimizer leaves no tensors behind once disposed (its zero-initialised momentum included)', () => {
  const w = tf.variable(tf.ones([3, 2]));
  const before = tf.memory().numTensors;
  const sgd = new Sgd([w], { momentum: 0.9, weightDecay: 5e-4 });
  sgd.dispose();
  assert.equal(tf.memory().numTensors, before);
  w.dispose();
});
