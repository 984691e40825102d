import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { setupEngine } from '../helpers/engine.js';
import { batchNormTrain } from '../../src/engine/batchNorm.js';
import { onBoth, randomArray, maxRelErr } from './kernelCompare.js';

await setupEngine({ backend: 'wasm', threads: 1 });

// Reference: the stock composition that autodiff differentiates op by op.
function stockBn(x: tf.Tensor, g: tf.Tensor, b: tf.Tensor): tf.Tensor {
  const axes = [...Array(x.rank - 1).keys()];
  const { mean, variance } = tf.moments(x, axes);
  return tf.batchNorm(x, mean, variance, b, g, 1e-5);
}

for (const shape of [[4, 5, 5, 3], [6, 8], [3, 7, 6, 16]]) {
  test(`closed-form batch-norm backward equals autodiff of the stock composition, x[${shape}]`, async () => {
    const size = shape.reduce((p, q) => p * q, 1);
    const c = shape[shape.length - 1];
    const xs = randomArray(size, 1, 2);
    const gs = randomArray(c, 2);
    const bs = randomArray(c, 3);
    const dys = randomArray(size, 4);
    const r = await onBoth(() => {
      const x = tf.tensor(xs, shape);
      const g = tf.tensor1d(gs);
      const b = tf.tensor1d(bs);
      const dy = tf.tensor(dys, shape);
      const ours = tf.grads((a: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(batchNormTrain(a, gg as tf.Tensor1D, bb as tf.Tensor1D), dy)))([x, g, b]);
      const ref = tf.grads((a: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(stockBn(a, gg, bb), dy)))([x, g, b]);
      const ops = tf.grads((a: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(batchNormTrain(a, gg as tf.Tensor1D, bb as tf.Tensor1D, 1e-5, undefined, 'ops'), dy)))([x, g, b]);
      return [batchNormTrain(x, g, b), stockBn(x, g, b), ...ours, ...ref, batchNormTrain(x, g, b, 1e-5, undefined, 'ops'), ...ops];
    });
    for (const out of [r.wasm, r.cpu]) {
      assert.ok(maxRelErr(out[0], out[1]) < 1e-4, 'forward');
      for (let i = 0; i < 3; i++) assert.ok(maxRelErr(out[2 + i], out[5 + i]) < 1e-3, `grad ${i}: ${maxRelErr(out[2 + i], out[5 + i])}`);
      // the tensor-op implementation (used on native backends) agrees too
      assert.ok(maxRelErr(out[8], out[1]) < 1e-4, 'ops forward');
      for (let i = 0; i < 3; i++) assert.ok(maxRelErr(out[9 + i], out[5 + i]) < 1e-3, `ops grad ${i}`);
    }
    for (let i = 0; i < 12; i++) assert.ok(maxRelErr(r.wasm[i], r.cpu[i]) < 1e-3, `wasm vs cpu ${i}`);
  });
}

test('onStats receives the batch mean, biased variance and count', async () => {
  await tf.setBackend('wasm');
  const x = tf.tensor2d([[1, 10], [3, 20], [5, 60]]);
  let got: number[][] = [];
  tf.tidy(() => {
    batchNormTrain(x, tf.ones([2]) as tf.Tensor1D, tf.zeros([2]) as tf.Tensor1D, 1e-5, (s) => {
      got = [Array.from(s.mean.dataSync()), Array.from(s.variance.dataSync()), [s.count]];
    });
  });
  assert.deepEqual(got[0], [3, 30]);
  assert.ok(Math.abs(got[1][0] - 8 / 3) < 1e-5 && Math.abs(got[1][1] - 1400 / 3) < 1e-3);
  assert.deepEqual(got[2], [3]);
  x.dispose();
});

test('fused PReLU gradient equals tfjs autodiff of tf.prelu (wasm and cpu)', async () => {
  const { prelu } = await import('../../src/engine/prelu.js');
  const xs = randomArray(3 * 4 * 4 * 5, 21);
  const as = randomArray(5, 22, 0.3);
  const dys = randomArray(xs.length, 23);
  const r = await onBoth(() => {
    const x = tf.tensor4d(xs, [3, 4, 4, 5]);
    const a = tf.tensor1d(as);
    const dy = tf.tensor4d(dys, [3, 4, 4, 5]);
    const ours = tf.grads((u: tf.Tensor, v: tf.Tensor) => tf.sum(tf.mul(prelu(u, v), dy)))([x, a]);
    const ref = tf.grads((u: tf.Tensor, v: tf.Tensor) => tf.sum(tf.mul(tf.prelu(u, v as tf.Tensor4D), dy)))([x, a]);
    return [prelu(x, a), tf.prelu(x, a as unknown as tf.Tensor4D), ...ours, ...ref];
  });
  for (const out of [r.wasm, r.cpu]) {
    assert.ok(maxRelErr(out[0], out[1]) < 1e-6);
    assert.ok(maxRelErr(out[2], out[4]) < 1e-5, 'dx');
    assert.ok(maxRelErr(out[3], out[5]) < 1e-4, 'dalpha');
  }
});
