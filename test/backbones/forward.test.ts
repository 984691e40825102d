import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { setupEngine } from '../helpers/engine.js';
import { createBackbone, resolveBackboneOptions, type Backbone } from '../../src/backbones/index.js';
import { GraphBackbone } from '../../src/backbones/graphBackbone.js';
import type { ArchitectureSpec } from '../../src/backbones/spec.js';

await setupEngine({ backend: 'cpu' });

const shapeOf = (b: Backbone, name: string) => b.variables().find((v) => v.name === name)!.variable.shape;

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

test('forward shapes at 112/56/48 with a width multiplier; the final map follows PyTorch padding', () => {
  // 4 stride-2 stages, pad 1: 112 -> 7, 56 -> 4 (ceil), 48 -> 3
  for (const [size, side] of [[112, 7], [56, 4], [48, 3]]) {
    for (const name of ['r18', 'mbf']) {
      const b = createBackbone(name, { inputSize: size, widthMultiplier: 0.125, embeddingSize: 24 });
      try {
        const y = tf.tidy(() => b.apply(tf.randomNormal([1, size, size, 3], 0, 1, 'float32', 1) as tf.Tensor4D, false));
        assert.deepEqual(y.shape, [1, 24], `${name} at ${size}`);
        assert.ok(Array.from(y.dataSync()).every(Number.isFinite));
        y.dispose();
        if (name === 'r18') assert.deepEqual(shapeOf(b, 'fc.weight'), [64 * side * side, 24]);
        else assert.deepEqual(shapeOf(b, 'features.layers.0.layers.0.weight'), [side, side, 64, 1]); // GDC kernel = final side
      } finally {
        b.dispose();
      }
    }
  }
});

test('apply rejects inputs of the wrong shape', () => {
  const b = createBackbone('mbf', { inputSize: 32, widthMultiplier: 0.125 });
  try {
    assert.throws(() => b.apply(tf.zeros([1, 48, 48, 3]) as tf.Tensor4D, false), /expected NHWC input \[B, 32, 32, 3\]/);
  } finally {
    b.dispose();
  }
});

test('grouped convolution matches the PyTorch definition', () => {
  // in 4, out 6, groups 2 -> 2 inputs and 3 outputs per group; stride 2, symmetric pad 1
  const [n, size, inC, outC, groups, k, stride, pad] = [2, 5, 4, 6, 2, 3, 2, 1];
  const spec: ArchitectureSpec = {
    inputSize: size,
    inputChannels: inC,
    embeddingSize: 0,
    nodes: [
      { op: 'conv', name: 'g', inChannels: inC, outChannels: outC, kernel: k, stride, pad, groups, init: { type: 'normal', std: 1 } },
      { op: 'flatten' },
    ],
  };
  const b = new GraphBackbone('grouped', resolveBackboneOptions({ seed: 3 }), spec);
  try {
    const x = tf.randomNormal([n, size, size, inC], 0, 1, 'float32', 2) as tf.Tensor4D;
    const y = b.apply(x, false);
    const xs = x.arraySync();
    const w = b.variables()[0].variable.arraySync() as number[][][][]; // [k][k][inC][co]
    const [ci, co] = [inC / groups, outC / groups];
    const out = Math.floor((size + 2 * pad - k) / stride) + 1;
    const expected: number[] = [];
    for (let b0 = 0; b0 < n; b0++)
      for (let oy = 0; oy < out; oy++)
        for (let ox = 0; ox < out; ox++)
          for (let g = 0; g < groups; g++)
            for (let o = 0; o < co; o++) {
              let s = 0;
              for (let i = 0; i < ci; i++)
                for (let ky = 0; ky < k; ky++)
                  for (let kx = 0; kx < k; kx++) {
                    const iy = oy * stride + ky - pad;
                    const ix = ox * stride + kx - pad;
                    if (iy < 0 || ix < 0 || iy >= size || ix >= size) continue;
                    s += xs[b0][iy][ix][g * ci + i] * w[ky][kx][g * ci + i][o];
                  }
              expected.push(s);
            }
    assert.equal(y.size, expected.length);
    const got = y.dataSync();
    for (let i = 0; i < expected.length; i++) assert.ok(Math.abs(got[i] - expected[i]) < 1e-4, `element ${i}: ${got[i]} vs ${expected[i]}`);
    tf.dispose([x, y]);
  } finally {
    b.dispose();
  }
});

test('training mode updates BN running statistics with PyTorch semantics; inference mode does not', () => {
  const spec: ArchitectureSpec = {
    inputSize: 4,
    inputChannels: 3,
    embeddingSize: 0,
    nodes: [{ op: 'bn', name: 'bn', channels: 3, frozenScale: false }, { op: 'flatten' }],
  };
  const b = new GraphBackbone('bn-only', resolveBackboneOptions(), spec);
  try {
    const x = tf.add(tf.mul(tf.randomNormal([2, 4, 4, 3], 0, 1, 'float32', 4), [1, 2, 3]), [5, -1, 0]) as tf.Tensor4D;
    const stat = (name: string) => Array.from(b.variables().find((v) => v.name === name)!.variable.dataSync());
    tf.dispose(b.apply(x, true));
    const data = x.dataSync();
    for (let c = 0; c < 3; c++) {
      const vals = Array.from(data).filter((_, i) => i % 3 === c);
      const mean = vals.reduce((s, v) => s + v, 0) / vals.length;
      const unbiased = vals.reduce((s, v) => s + (v - mean) ** 2, 0) / (vals.length - 1);
      assert.ok(Math.abs(stat('bn.running_mean')[c] - 0.1 * mean) < 1e-5, `running_mean[${c}]`);
      assert.ok(Math.abs(stat('bn.running_var')[c] - (0.9 * 1 + 0.1 * unbiased)) < 1e-4, `running_var[${c}]`);
    }
    const before = [stat('bn.running_mean'), stat('bn.running_var')];
    tf.dispose(b.apply(x, false));
    assert.deepEqual([stat('bn.running_mean'), stat('bn.running_var')], before);
    // Training output is batch-normalised: per-channel mean 0.
    const y = b.apply(x, true);
    const m = tf.tidy(() => tf.mean(tf.reshape(y, [-1, 3]), 0).dataSync());
    assert.ok(Array.from(m).every((v) => Math.abs(v) < 1e-5));
    tf.dispose([x, y]);
  } finally {
    b.dispose();
  }
});

test('a real backbone updates every running statistic in training mode only', () => {
  const b = createBackbone('r18', { inputSize: 32, widthMultiplier: 0.125, embeddingSize: 16 });
  try {
    const buffers = () => b.variables().filter((v) => v.kind === 'buffer').map((v) => Array.from(v.variable.dataSync()));
    const x = tf.randomNormal([2, 32, 32, 3], 0, 1, 'float32', 9) as tf.Tensor4D;
    const initial = buffers();
    tf.dispose(b.apply(x, false));
    assert.deepEqual(buffers(), initial);
    tf.dispose(b.apply(x, true));
    const after = buffers();
    after.forEach((v, i) => assert.notDeepEqual(v, initial[i], `buffer ${i} unchanged`));
    x.dispose();
  } finally {
    b.dispose();
  }
});

test('copyFrom makes an exact copy; mismatched architectures are rejected', () => {
  const opts = { inputSize: 32, widthMultiplier: 0.25, embeddingSize: 16 };
  const q = createBackbone('mbf', { ...opts, seed: 1 });
  const k = createBackbone('mbf', { ...opts, seed: 2 });
  const other = createBackbone('r18', opts);
  try {
    const x = tf.randomNormal([2, 32, 32, 3], 0, 1, 'float32', 5) as tf.Tensor4D;
    tf.dispose(q.apply(x, true)); // non-trivial running stats
    const yq = q.apply(x, false);
    const before = k.apply(x, false);
    assert.ok(maxAbsDiff(yq, before) > 1e-3);
    k.copyFrom(q);
    const yk = k.apply(x, false);
    assert.equal(maxAbsDiff(yq, yk), 0);
    // The copy is independent: changing q afterwards leaves k alone.
    tf.dispose(q.apply(x, true));
    const yk2 = k.apply(x, false);
    assert.equal(maxAbsDiff(yk, yk2), 0);
    assert.throws(() => k.copyFrom(other), /does not match/);
    tf.dispose([x, yq, before, yk, yk2]);
  } finally {
    q.dispose();
    k.dispose();
    other.dispose();
  }
});
