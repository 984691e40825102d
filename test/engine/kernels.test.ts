// Every kernel of the pack against the cpu backend (the shared cases in kernelCases.ts), plus the
// pack's own behaviour: loud failure where it has no kernel, no leaks, unregistering.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { setupEngine } from '../helpers/engine.js';
import { registerKernelComparisons } from './kernelCases.js';
import { KERNEL_PACK, kernelPackRegistered } from '../../src/engine/kernels/index.js';

const info = await setupEngine({ backend: 'wasm', threads: 1 });
const TOL = 1e-4;

test('engine is wasm with the pack registered', () => {
  assert.equal(info.backend, 'wasm');
  assert.ok(kernelPackRegistered());
  for (const { name } of KERNEL_PACK) assert.ok(tf.getKernel(name, 'wasm'), name);
});

registerKernelComparisons('wasm', TOL);

test('depthwise backprop filter with channel multiplier > 1 fails loudly instead of computing garbage', async () => {
  await tf.setBackend('wasm');
  const x = tf.ones([1, 4, 4, 2]) as tf.Tensor4D;
  const f = tf.ones([3, 3, 2, 2]) as tf.Tensor4D;
  assert.throws(() => tf.grad((b: tf.Tensor) => tf.sum(tf.depthwiseConv2d(x, b as tf.Tensor4D, 1, 'same')))(f), /channel multiplier 2/);
  tf.dispose([x, f]);
});

test('the pack leaks no backend memory across repeated gradient calls', async () => {
  await tf.setBackend('wasm');
  const x = tf.randomNormal([2, 8, 8, 4]) as tf.Tensor4D;
  const f = tf.randomNormal([3, 3, 4, 4]) as tf.Tensor4D;
  const step = () => tf.tidy(() => {
    const g = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 'same')))([x, f]);
    const h = tf.grads((a: tf.Tensor) => tf.sum(tf.depthwiseConv2d(a as tf.Tensor4D, tf.ones([3, 3, 4, 1]) as tf.Tensor4D, 2, 'same')))([x]);
    return tf.add(tf.sum(g[0]), tf.sum(h[0]));
  }).dispose();
  step();
  const backend = tf.backend() as unknown as { numDataIds(): number };
  const before = backend.numDataIds();
  for (let i = 0; i < 5; i++) step();
  assert.equal(backend.numDataIds(), before);
  tf.dispose([x, f]);
});

test('unregisterKernelPack restores the stock kernels and registerKernelPack brings the pack back', async () => {
  const { unregisterKernelPack, registerKernelPack } = await import('../../src/engine/kernels/index.js');
  await tf.setBackend('wasm');
  unregisterKernelPack();
  assert.equal(kernelPackRegistered(), false);
  assert.equal(tf.getKernel('Conv2DBackpropFilter', 'wasm'), undefined, 'missing kernels are missing again');
  assert.ok(tf.getKernel('Conv2DBackpropInput', 'wasm'), 'slow stock kernels are back');
  const y = tf.tidy(() => tf.matMul(tf.ones([2, 3]), tf.ones([2, 3]), false, true).dataSync()[0]);
  assert.equal(y, 3);
  registerKernelPack();
  assert.ok(kernelPackRegistered() && tf.getKernel('Conv2DBackpropFilter', 'wasm'));
});
