import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { setupEngine } from '../helpers/engine.js';
import { assertNoTensorLeak, countTensorsAcrossSteps } from '../../src/engine/leak.js';

await setupEngine({ backend: 'wasm', threads: 1 });

test('a tidy training step passes the leak check', async () => {
  const w = tf.variable(tf.randomNormal([4, 3], 0, 1, 'float32', 1));
  const x = tf.randomNormal([5, 4], 0, 1, 'float32', 2);
  const step = () => {
    const { value, grads } = tf.variableGrads(() => tf.sum(tf.square(tf.matMul(x, w))) as tf.Scalar);
    tf.tidy(() => w.assign(tf.sub(w, tf.mul(grads[w.name], 0.01))));
    tf.dispose([value, ...Object.values(grads)]);
  };
  await assertNoTensorLeak(step, 3);
  tf.dispose([w, x]);
});

test('a leaking step is caught, with the counts in the message', async () => {
  const kept: tf.Tensor[] = [];
  await assert.rejects(assertNoTensorLeak(() => kept.push(tf.ones([2])), 2, 1, 'leaky'), /leaky leaks tensors: \d+ live before, then \d+, \d+/);
  const r = await countTensorsAcrossSteps(() => kept.push(tf.ones([2])), 2, 0);
  assert.equal(r.after - r.before, 2);
  tf.dispose(kept);
});
