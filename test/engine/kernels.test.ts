// Every kernel of the pack against the cpu backend: random inputs, strides 1 and 2, same/valid/explicit
// padding, 1x1, 3x3, 7x7 depthwise. Gradients come from tf.grads, i.e. exactly how training uses them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { setupEngine } from '../helpers/engine.js';
import { onBoth, randomArray, maxRelErr } from './kernelCompare.js';
import { KERNEL_PACK, kernelPackRegistered } from '../../src/engine/kernels/index.js';

const info = await setupEngine({ backend: 'wasm', threads: 1 });
const TOL = 1e-4;

type Pad = 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]];
const explicit = (t: number, b: number, l: number, r: number): Pad => [[0, 0], [t, b], [l, r], [0, 0]];

test('engine is wasm with the pack registered', () => {
  assert.equal(info.backend, 'wasm');
  assert.ok(kernelPackRegistered());
  for (const { name } of KERNEL_PACK) assert.ok(tf.getKernel(name, 'wasm'), name);
});

const convCases: { n: number; h: number; w: number; cin: number; cout: number; k: number; s: 1 | 2; pad: Pad }[] = [
  { n: 2, h: 8, w: 8, cin: 3, cout: 5, k: 3, s: 1, pad: 'same' },
  { n: 2, h: 8, w: 8, cin: 4, cout: 6, k: 3, s: 2, pad: 'same' },
  { n: 2, h: 9, w: 7, cin: 4, cout: 3, k: 3, s: 2, pad: 'same' },
  { n: 1, h: 9, w: 9, cin: 3, cout: 4, k: 3, s: 1, pad: 'valid' },
  { n: 2, h: 9, w: 8, cin: 3, cout: 4, k: 3, s: 2, pad: 'valid' },
  { n: 2, h: 8, w: 8, cin: 4, cout: 8, k: 1, s: 1, pad: 'valid' },
  { n: 2, h: 8, w: 8, cin: 4, cout: 8, k: 1, s: 2, pad: 'valid' },
  { n: 2, h: 8, w: 8, cin: 3, cout: 4, k: 3, s: 2, pad: explicit(1, 1, 1, 1) },
  { n: 1, h: 7, w: 7, cin: 2, cout: 3, k: 3, s: 1, pad: explicit(2, 0, 1, 2) },
  { n: 2, h: 10, w: 10, cin: 3, cout: 4, k: 7, s: 2, pad: 'same' },
  // channel counts past the 32-wide tiles of the JS filter rotation (filterPrep.ts), both strides
  { n: 2, h: 6, w: 6, cin: 40, cout: 70, k: 3, s: 1, pad: 'same' },
  { n: 2, h: 7, w: 6, cin: 70, cout: 33, k: 3, s: 2, pad: explicit(1, 1, 1, 1) },
  { n: 1, h: 9, w: 9, cin: 5, cout: 3, k: 1, s: 2, pad: 'same' }, // polyphase with all-zero phases
  { n: 1, h: 11, w: 9, cin: 3, cout: 2, k: 5, s: 2, pad: 'valid' },
];

for (const c of convCases) {
  const label = `conv2d ${c.k}x${c.k} s${c.s} pad ${JSON.stringify(c.pad)} x[${c.n},${c.h},${c.w},${c.cin}]`;
  test(`Conv2DBackpropInput + Conv2DBackpropFilter match cpu: ${label}`, async () => {
    const xs = randomArray(c.n * c.h * c.w * c.cin, 1);
    const fs = randomArray(c.k * c.k * c.cin * c.cout, 2, 0.5);
    const r = await onBoth(() => {
      const x = tf.tensor4d(xs, [c.n, c.h, c.w, c.cin]);
      const f = tf.tensor4d(fs, [c.k, c.k, c.cin, c.cout]);
      const y = tf.conv2d(x, f, c.s, c.pad);
      const dy = tf.tensor(randomArray(y.size, 3), y.shape);
      const [dx, df] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.s, c.pad), dy)))([x, f]);
      return [y, dx, df];
    });
    for (let i = 0; i < 3; i++) assert.ok(maxRelErr(r.wasm[i], r.cpu[i]) < TOL, `${['y', 'dx', 'dW'][i]} err ${maxRelErr(r.wasm[i], r.cpu[i])}`);
  });
}

const dwCases: { n: number; h: number; w: number; c: number; k: number; s: 1 | 2; pad: Pad }[] = [
  { n: 2, h: 8, w: 8, c: 6, k: 3, s: 1, pad: 'same' },
  { n: 2, h: 8, w: 8, c: 6, k: 3, s: 2, pad: 'same' },
  { n: 2, h: 9, w: 9, c: 4, k: 3, s: 2, pad: 'valid' },
  { n: 2, h: 8, w: 8, c: 5, k: 3, s: 2, pad: explicit(1, 1, 1, 1) },
  { n: 2, h: 7, w: 7, c: 8, k: 7, s: 1, pad: 'valid' }, // GDC: 7x7 global depthwise
  { n: 1, h: 6, w: 6, c: 3, k: 1, s: 1, pad: 'same' },
];

for (const c of dwCases) {
  const label = `depthwise ${c.k}x${c.k} s${c.s} pad ${JSON.stringify(c.pad)} x[${c.n},${c.h},${c.w},${c.c}]`;
  test(`DepthwiseConv2dNativeBackpropInput/Filter match cpu: ${label}`, async () => {
    const xs = randomArray(c.n * c.h * c.w * c.c, 4);
    const fs = randomArray(c.k * c.k * c.c, 5, 0.5);
    const r = await onBoth(() => {
      const x = tf.tensor4d(xs, [c.n, c.h, c.w, c.c]);
      const f = tf.tensor4d(fs, [c.k, c.k, c.c, 1]);
      const y = tf.depthwiseConv2d(x, f, c.s, c.pad);
      const dy = tf.tensor(randomArray(y.size, 6), y.shape);
      const [dx, df] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.s, c.pad), dy)))([x, f]);
      return [y, dx, df];
    });
    for (let i = 0; i < 3; i++) assert.ok(maxRelErr(r.wasm[i], r.cpu[i]) < TOL, `${['y', 'dx', 'dW'][i]} err ${maxRelErr(r.wasm[i], r.cpu[i])}`);
  });
}

test('DepthwiseConv2dNativeBackpropInput with channel multiplier 2 matches cpu (rotated filter folded to C*M)', async () => {
  for (const s of [1, 2] as const) {
    const xs = randomArray(2 * 7 * 7 * 3, 13);
    const fs = randomArray(3 * 3 * 3 * 2, 14, 0.5);
    const r = await onBoth(() => {
      const x = tf.tensor4d(xs, [2, 7, 7, 3]);
      const f = tf.tensor4d(fs, [3, 3, 3, 2]);
      const y = tf.depthwiseConv2d(x, f, s, 'same');
      const dy = tf.tensor(randomArray(y.size, 15), y.shape);
      return [tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.depthwiseConv2d(a as tf.Tensor4D, f, s, 'same'), dy)))(x)];
    });
    assert.ok(maxRelErr(r.wasm[0], r.cpu[0]) < TOL, `stride ${s} err ${maxRelErr(r.wasm[0], r.cpu[0])}`);
  }
});

test('depthwise backprop filter with channel multiplier > 1 fails loudly instead of computing garbage', async () => {
  await tf.setBackend('wasm');
  const x = tf.ones([1, 4, 4, 2]) as tf.Tensor4D;
  const f = tf.ones([3, 3, 2, 2]) as tf.Tensor4D;
  assert.throws(() => tf.grad((b: tf.Tensor) => tf.sum(tf.depthwiseConv2d(x, b as tf.Tensor4D, 1, 'same')))(f), /channel multiplier 2/);
  tf.dispose([x, f]);
});

test('BatchMatMul with transposed operands matches cpu (both matmul gradients)', async () => {
  for (const [m, k, n] of [[5, 7, 3], [16, 32, 40], [1, 9, 4]]) {
    const as = randomArray(m * k, 7);
    const bs = randomArray(k * n, 8);
    const r = await onBoth(() => {
      const a = tf.tensor2d(as, [m, k]);
      const b = tf.tensor2d(bs, [k, n]);
      const at = tf.transpose(a);
      const bt = tf.transpose(b);
      const dc = tf.tensor2d(randomArray(m * n, 9), [m, n]);
      const [da, db] = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(tf.matMul(x as tf.Tensor2D, y as tf.Tensor2D), dc)))([a, b]);
      return [tf.matMul(at, b, true, false), tf.matMul(a, bt, false, true), tf.matMul(at, bt, true, true), da, db,
        tf.matMul(tf.reshape(at, [1, k, m]), tf.reshape(b, [1, k, n]), true, false)];
    });
    for (let i = 0; i < r.cpu.length; i++) assert.ok(maxRelErr(r.wasm[i], r.cpu[i]) < TOL, `case ${m}x${k}x${n} output ${i}`);
  }
});

test('BatchMatMul transposed: both the direct and the swapped (C^T = op(B)^T.op(A)^T) branch match cpu', async () => {
  // [m,k,n]: a tiny m with a long k makes transposing B dearer than transposing A plus C (swapped branch);
  // a large m with a small n keeps the direct branch. Rank 3 with batch 1 goes through the same code.
  for (const [m, k, n] of [[3, 70, 45], [45, 70, 3], [2, 130, 65], [65, 33, 66]]) {
    const as = randomArray(m * k, 16);
    const bs = randomArray(k * n, 17);
    const r = await onBoth(() => {
      const a = tf.tensor2d(as, [m, k]);
      const b = tf.tensor2d(bs, [k, n]);
      const at = tf.transpose(a);
      const bt = tf.transpose(b);
      return [tf.matMul(a, bt, false, true), tf.matMul(at, b, true, false), tf.matMul(at, bt, true, true),
        tf.matMul(tf.reshape(a, [1, m, k]), tf.reshape(bt, [1, n, k]), false, true),
        tf.matMul(tf.reshape(at, [1, k, m]), tf.reshape(bt, [1, n, k]), true, true)];
    });
    for (let i = 0; i < r.cpu.length; i++) assert.ok(maxRelErr(r.wasm[i], r.cpu[i]) < TOL, `case ${m}x${k}x${n} output ${i}`);
  }
});

test('Tile: broadcast-only fast path and the general case match cpu', async () => {
  const xs = randomArray(6, 10);
  const r = await onBoth(() => {
    const v = tf.tensor4d(xs, [1, 1, 1, 6]);
    const m = tf.tensor2d(xs, [2, 3]);
    return [tf.tile(v, [2, 3, 4, 1]), tf.tile(m, [2, 2]), tf.tile(tf.tensor2d(xs, [1, 6]), [3, 1]), tf.tile(tf.tensor1d([1, 2, 3], 'int32'), [2])];
  });
  for (let i = 0; i < r.cpu.length; i++) assert.deepEqual(Array.from(r.wasm[i]), Array.from(r.cpu[i]));
});

test('UnsortedSegmentSum (tf.gather gradient) matches cpu, with duplicate indices', async () => {
  const xs = randomArray(5 * 4, 11);
  const r = await onBoth(() => {
    const data = tf.tensor2d(randomArray(6 * 4, 12), [6, 4]);
    const idx = tf.tensor1d([3, 1, 3, 0, 5], 'int32');
    const g = tf.grad((d: tf.Tensor) => tf.sum(tf.mul(tf.gather(d, idx), tf.tensor2d(xs, [5, 4]))))(data);
    return [g, tf.unsortedSegmentSum(tf.tensor2d(xs, [5, 4]), idx, 7)];
  });
  for (let i = 0; i < r.cpu.length; i++) assert.ok(maxRelErr(r.wasm[i], r.cpu[i]) < 1e-6);
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
