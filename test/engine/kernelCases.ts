// Numerical comparisons of the training kernels against the cpu backend, shared by every backend under
// test (wasm with the kernel pack, torch): random inputs, strides 1 and 2, same/valid/explicit padding,
// 1x1 to 7x7 filters, depthwise convolutions, transposed matmuls, tile and the gather gradient.
// Gradients come from tf.grads, i.e. exactly how training uses them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { onBackends, randomArray, maxRelErr } from './kernelCompare.js';

type Pad = 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]];
const explicit = (t: number, b: number, l: number, r: number): Pad => [[0, 0], [t, b], [l, r], [0, 0]];

/**
 * Registers the shared comparison tests for `target` (tolerance: largest relative error). `skip`: a
 * reason to skip them all (the backend is not available here).
 */
export function registerKernelComparisons(target: string, TOL = 1e-4, skip: string | false = false): void {

  const convCases: { n: number; h: number; w: number; cin: number; cout: number; k: number; s: 1 | 2; pad: Pad }[] = [
    { n: 2, h: 8, w: 8, cin: 3, cout: 5, k: 3, s: 1, pad: 'same' },
    { n: 2, h: 8, w: 8, cin: 4, cout: 6, k: 3, s: 2, pad: 'same' },
    { n: 2, h: 9, w: 7, cin: 4, cout: 3, k: 3, s: 2, pad: 'same' },
    { n: 1, h: 9, w: 9, cin: 3, cout: 4, k: 3, s: 1, pad: 'valid' },
    { n: 2, h: 9, w: 8, cin: 3, cout: 4, k: 3, s: 2, pad: 'valid' },
    { n: 2, h: 8, w: 8, cin: 4, cout: 8, k: 1, s: 1, pad: 'valid' },
    { n: 2, h: 8, w: 8, cin: 4, cout: 8, k: 1, s: 2, pad: 'valid' },
    // strided 1x1 shapes where libtorch 1.13's channels-last weight gradient is wrong (IResNet's shortcut)
    { n: 3, h: 12, w: 12, cin: 3, cout: 16, k: 1, s: 2, pad: 'valid' },
    { n: 2, h: 9, w: 9, cin: 64, cout: 128, k: 1, s: 2, pad: 'same' },
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
    test(`${target}: Conv2DBackpropInput + Conv2DBackpropFilter match cpu: ${label}`, { skip }, async () => {
      const xs = randomArray(c.n * c.h * c.w * c.cin, 1);
      const fs = randomArray(c.k * c.k * c.cin * c.cout, 2, 0.5);
      const r = await onBackends(() => {
        const x = tf.tensor4d(xs, [c.n, c.h, c.w, c.cin]);
        const f = tf.tensor4d(fs, [c.k, c.k, c.cin, c.cout]);
        const y = tf.conv2d(x, f, c.s, c.pad);
        const dy = tf.tensor(randomArray(y.size, 3), y.shape);
        const [dx, df] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.s, c.pad), dy)))([x, f]);
        return [y, dx, df];
      }, target);
      for (let i = 0; i < 3; i++) assert.ok(maxRelErr(r.target[i], r.cpu[i]) < TOL, `${['y', 'dx', 'dW'][i]} err ${maxRelErr(r.target[i], r.cpu[i])}`);
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
    test(`${target}: DepthwiseConv2dNativeBackpropInput/Filter match cpu: ${label}`, { skip }, async () => {
      const xs = randomArray(c.n * c.h * c.w * c.c, 4);
      const fs = randomArray(c.k * c.k * c.c, 5, 0.5);
      const r = await onBackends(() => {
        const x = tf.tensor4d(xs, [c.n, c.h, c.w, c.c]);
        const f = tf.tensor4d(fs, [c.k, c.k, c.c, 1]);
        const y = tf.depthwiseConv2d(x, f, c.s, c.pad);
        const dy = tf.tensor(randomArray(y.size, 6), y.shape);
        const [dx, df] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.s, c.pad), dy)))([x, f]);
        return [y, dx, df];
      }, target);
      for (let i = 0; i < 3; i++) assert.ok(maxRelErr(r.target[i], r.cpu[i]) < TOL, `${['y', 'dx', 'dW'][i]} err ${maxRelErr(r.target[i], r.cpu[i])}`);
    });
  }

  test(`${target}: DepthwiseConv2dNativeBackpropInput with channel multiplier 2 matches cpu (rotated filter folded to C*M)`, { skip }, async () => {
    for (const s of [1, 2] as const) {
      const xs = randomArray(2 * 7 * 7 * 3, 13);
      const fs = randomArray(3 * 3 * 3 * 2, 14, 0.5);
      const r = await onBackends(() => {
        const x = tf.tensor4d(xs, [2, 7, 7, 3]);
        const f = tf.tensor4d(fs, [3, 3, 3, 2]);
        const y = tf.depthwiseConv2d(x, f, s, 'same');
        const dy = tf.tensor(randomArray(y.size, 15), y.shape);
        return [tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.depthwiseConv2d(a as tf.Tensor4D, f, s, 'same'), dy)))(x)];
      }, target);
      assert.ok(maxRelErr(r.target[0], r.cpu[0]) < TOL, `stride ${s} err ${maxRelErr(r.target[0], r.cpu[0])}`);
    }
  });

  test(`${target}: BatchMatMul with transposed operands matches cpu (both matmul gradients)`, { skip }, async () => {
    for (const [m, k, n] of [[5, 7, 3], [16, 32, 40], [1, 9, 4]]) {
      const as = randomArray(m * k, 7);
      const bs = randomArray(k * n, 8);
      const r = await onBackends(() => {
        const a = tf.tensor2d(as, [m, k]);
        const b = tf.tensor2d(bs, [k, n]);
        const at = tf.transpose(a);
        const bt = tf.transpose(b);
        const dc = tf.tensor2d(randomArray(m * n, 9), [m, n]);
        const [da, db] = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(tf.matMul(x as tf.Tensor2D, y as tf.Tensor2D), dc)))([a, b]);
        return [tf.matMul(at, b, true, false), tf.matMul(a, bt, false, true), tf.matMul(at, bt, true, true), da, db,
          tf.matMul(tf.reshape(at, [1, k, m]), tf.reshape(b, [1, k, n]), true, false)];
      }, target);
      for (let i = 0; i < r.cpu.length; i++) assert.ok(maxRelErr(r.target[i], r.cpu[i]) < TOL, `case ${m}x${k}x${n} output ${i}`);
    }
  });

  test(`${target}: BatchMatMul transposed: both the direct and the swapped (C^T = op(B)^T.op(A)^T) branch match cpu`, { skip }, async () => {
    // [m,k,n]: a tiny m with a long k makes transposing B dearer than transposing A plus C (swapped branch);
    // a large m with a small n keeps the direct branch. Rank 3 with batch 1 goes through the same code.
    for (const [m, k, n] of [[3, 70, 45], [45, 70, 3], [2, 130, 65], [65, 33, 66]]) {
      const as = randomArray(m * k, 16);
      const bs = randomArray(k * n, 17);
      const r = await onBackends(() => {
        const a = tf.tensor2d(as, [m, k]);
        const b = tf.tensor2d(bs, [k, n]);
        const at = tf.transpose(a);
        const bt = tf.transpose(b);
        return [tf.matMul(a, bt, false, true), tf.matMul(at, b, true, false), tf.matMul(at, bt, true, true),
          tf.matMul(tf.reshape(a, [1, m, k]), tf.reshape(bt, [1, n, k]), false, true),
          tf.matMul(tf.reshape(at, [1, k, m]), tf.reshape(bt, [1, n, k]), true, true)];
      }, target);
      for (let i = 0; i < r.cpu.length; i++) assert.ok(maxRelErr(r.target[i], r.cpu[i]) < TOL, `case ${m}x${k}x${n} output ${i}`);
    }
  });

  test(`${target}: Tile: broadcast-only fast path and the general case match cpu`, { skip }, async () => {
    const xs = randomArray(6, 10);
    const r = await onBackends(() => {
      const v = tf.tensor4d(xs, [1, 1, 1, 6]);
      const m = tf.tensor2d(xs, [2, 3]);
      return [tf.tile(v, [2, 3, 4, 1]), tf.tile(m, [2, 2]), tf.tile(tf.tensor2d(xs, [1, 6]), [3, 1]), tf.tile(tf.tensor1d([1, 2, 3], 'int32'), [2])];
    }, target);
    for (let i = 0; i < r.cpu.length; i++) assert.deepEqual(Array.from(r.target[i]), Array.from(r.cpu[i]));
  });

  test(`${target}: UnsortedSegmentSum (tf.gather gradient) matches cpu, with duplicate indices`, { skip }, async () => {
    const xs = randomArray(5 * 4, 11);
    const r = await onBackends(() => {
      const data = tf.tensor2d(randomArray(6 * 4, 12), [6, 4]);
      const idx = tf.tensor1d([3, 1, 3, 0, 5], 'int32');
      const g = tf.grad((d: tf.Tensor) => tf.sum(tf.mul(tf.gather(d, idx), tf.tensor2d(xs, [5, 4]))))(data);
      return [g, tf.unsortedSegmentSum(tf.tensor2d(xs, [5, 4]), idx, 7)];
    }, target);
    for (let i = 0; i < r.cpu.length; i++) assert.ok(maxRelErr(r.target[i], r.cpu[i]) < 1e-6);
  });
}
