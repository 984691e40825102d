// Every kernel of backend torch against the cpu backend: the training kernels (the cases shared with the
// wasm pack), then every other family with edge cases (broadcasting, int32 and bool, empty axes, negative
// strides, duplicates in scatters), errors that must surface as JS exceptions, and leaks. The last test
// checks that this file ran every registered kernel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { setupEngine, torchSkipReason } from '../../helpers/engine.js';
import { onBackends, randomArray, maxRelErr, kernelsRun } from '../kernelCompare.js';
import { registerKernelComparisons } from '../kernelCases.js';
import { TORCH_KERNELS, TorchBackend } from '../../../src/engine/torch/index.js';
import { batchNormTrain } from '../../../src/engine/batchNorm.js';
import { prelu } from '../../../src/engine/prelu.js';
import { Sgd, clipByGlobalNorm } from '../../../src/train/sgd.js';
import { createBackbone } from '../../../src/backbones/index.js';
import { ClassEncoder } from '../../../src/heads/attfc/index.js';

const skip = torchSkipReason();
if (!skip) await setupEngine({ backend: 'torch', threads: 2 });
const TOL = 1e-4;

/** Compares every output of fn on torch and cpu: exactly for int32/bool, relatively for float32. */
async function same(fn: () => tf.Tensor | tf.Tensor[], tol = TOL): Promise<void> {
  let dtypes: string[] = [];
  let shapes: number[][] = [];
  const r = await onBackends(() => {
    const out = fn();
    const list = Array.isArray(out) ? out : [out];
    if (tf.getBackend() === 'cpu') {
      dtypes = list.map((t) => t.dtype);
      shapes = list.map((t) => t.shape);
    } else {
      list.forEach((t, i) => {
        assert.equal(t.dtype, dtypes[i], `output ${i} dtype`);
        assert.deepEqual(t.shape, shapes[i], `output ${i} shape`);
      });
    }
    return list;
  }, 'torch');
  r.cpu.forEach((c, i) => {
    const t = r.target[i];
    if (dtypes[i] === 'float32') {
      // NaN and infinities must agree exactly, finite values within tol
      for (let j = 0; j < c.length; j++)
        if (!Number.isFinite(c[j]) || !Number.isFinite(t[j])) assert.ok(Object.is(c[j], t[j]) || (Number.isNaN(c[j]) && Number.isNaN(t[j])), `output ${i}[${j}]: ${t[j]} vs ${c[j]}`);
      const finite = (a: Float32Array) => a.map((v) => (Number.isFinite(v) ? v : 0));
      assert.ok(maxRelErr(finite(t), finite(c)) < tol, `output ${i}: max rel err ${maxRelErr(finite(t), finite(c))}`);
    } else assert.deepEqual(Array.from(t), Array.from(c), `output ${i}`);
  });
}

registerKernelComparisons('torch', TOL, skip);

const x24 = randomArray(2 * 3 * 4, 31, 2);
const specials = new Float32Array([0, -0, 1, -1, 0.5, 1.5, 2.5, -0.5, -2.5, Infinity, -Infinity, NaN]);

const UNARY: [string, (x: tf.Tensor) => tf.Tensor, (v: number) => number][] = [
  ['Abs', tf.abs, (v) => v],
  ['Acos', tf.acos, (v) => Math.tanh(v) * 0.9],
  ['Acosh', tf.acosh, (v) => 1 + Math.abs(v)],
  ['Asin', tf.asin, (v) => Math.tanh(v) * 0.9],
  ['Asinh', tf.asinh, (v) => v],
  ['Atan', tf.atan, (v) => v],
  ['Atanh', tf.atanh, (v) => Math.tanh(v) * 0.9],
  ['Ceil', tf.ceil, (v) => v * 3],
  ['Cos', tf.cos, (v) => v],
  ['Cosh', tf.cosh, (v) => v],
  ['Erf', tf.erf, (v) => v],
  ['Exp', tf.exp, (v) => v],
  ['Expm1', tf.expm1, (v) => v],
  ['Floor', tf.floor, (v) => v * 3],
  ['Log', tf.log, (v) => Math.abs(v) + 0.1],
  ['Log1p', tf.log1p, (v) => Math.abs(v)],
  ['Neg', tf.neg, (v) => v],
  ['Reciprocal', tf.reciprocal, (v) => Math.abs(v) + 0.5],
  ['Relu', tf.relu, (v) => v],
  ['Relu6', tf.relu6, (v) => v * 5],
  ['Round', tf.round, (v) => Math.round(v * 4) / 2], // halves: round half to even on both
  ['Rsqrt', tf.rsqrt, (v) => Math.abs(v) + 0.1],
  ['Selu', tf.selu, (v) => v],
  ['Sigmoid', tf.sigmoid, (v) => v],
  ['Sign', tf.sign, (v) => v],
  ['Sin', tf.sin, (v) => v],
  ['Sinh', tf.sinh, (v) => v],
  ['Softplus', tf.softplus, (v) => v],
  ['Sqrt', tf.sqrt, (v) => Math.abs(v)],
  ['Square', tf.square, (v) => v],
  ['Tan', tf.tan, (v) => Math.tanh(v)],
  ['Tanh', tf.tanh, (v) => v],
  ['Elu', tf.elu, (v) => v],
  ['LeakyRelu', (x) => tf.leakyRelu(x, 0.3), (v) => v],
  ['Step', (x) => tf.step(x, 0.25), (v) => v],
];

for (const [name, op, domain] of UNARY) {
  test(`${name} matches cpu`, { skip }, async () => {
    const xs = x24.map(domain);
    await same(() => op(tf.tensor(xs, [2, 3, 4])));
  });
}

test('unary kernels on int32 keep or promote the dtype like tfjs', { skip }, async () => {
  await same(() => {
    const i = tf.tensor1d([-3, -1, 0, 2, 5], 'int32');
    return [tf.abs(i), tf.neg(i), tf.square(i), tf.sign(i), tf.relu(i)];
  });
});

test('IsFinite, IsInf, IsNan, Step and Relu on infinities, NaN and signed zeros', { skip }, async () => {
  await same(() => {
    const s = tf.tensor1d(specials);
    return [tf.isFinite(s), tf.isInf(s), tf.isNaN(s), tf.step(s, 0.5), tf.relu(s), tf.abs(s)];
  });
});

const BINARY: [string, (a: tf.Tensor, b: tf.Tensor) => tf.Tensor, (v: number) => number][] = [
  ['Add', tf.add, (v) => v],
  ['Sub', tf.sub, (v) => v],
  ['Multiply', tf.mul, (v) => v],
  ['RealDiv', tf.div, (v) => Math.abs(v) + 0.5],
  ['Maximum', tf.maximum, (v) => v],
  ['Minimum', tf.minimum, (v) => v],
  ['Pow', tf.pow, (v) => Math.abs(v) + 0.1],
  ['Mod', tf.mod, (v) => Math.abs(v) + 0.5],
  ['Atan2', tf.atan2, (v) => v],
  ['FloorDiv', tf.floorDiv, (v) => Math.abs(v) + 0.5],
  ['SquaredDifference', tf.squaredDifference, (v) => v],
];

for (const [name, op, domainB] of BINARY) {
  test(`${name} matches cpu, with broadcasting and a scalar`, { skip }, async () => {
    const as = randomArray(2 * 3 * 4, 41, 3);
    const bs = randomArray(3 * 1, 42, 3).map(domainB);
    await same(() => {
      const a = tf.tensor(as, [2, 3, 4]);
      return [op(a, tf.tensor(bs, [3, 1])), op(a, tf.scalar(domainB(0.7))), op(tf.tensor(bs, [3, 1]), tf.scalar(domainB(-1.3)))];
    });
  });
}

test('int32 arithmetic stays int32 (floor division and modulo with negative operands)', { skip }, async () => {
  await same(() => {
    const a = tf.tensor1d([-7, -3, 0, 3, 7, 9], 'int32');
    const b = tf.tensor1d([2, -2, 3, 2, -3, 4], 'int32');
    return [tf.add(a, b), tf.sub(a, b), tf.mul(a, b), tf.floorDiv(a, b), tf.mod(a, b), tf.maximum(a, b), tf.minimum(a, b), tf.div(a, b)];
  });
});

test('comparisons and logical kernels give bool, with ties and broadcasting', { skip }, async () => {
  await same(() => {
    const a = tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3]);
    const b = tf.tensor1d([2, 2, 7]);
    const p = tf.tensor1d([true, false, true, false], 'bool');
    const q = tf.tensor1d([true, true, false, false], 'bool');
    return [tf.equal(a, b), tf.notEqual(a, b), tf.greater(a, b), tf.greaterEqual(a, b), tf.less(a, b), tf.lessEqual(a, b),
      tf.logicalAnd(p, q), tf.logicalOr(p, q), tf.logicalXor(p, q), tf.logicalNot(p)];
  });
});

test('Cast, AddN, ClipByValue, Select, ZerosLike, OnesLike match cpu', { skip }, async () => {
  const xs = new Float32Array([-2.7, -0.5, 0, 0.4, 1.5, 3.9]);
  await same(() => {
    const x = tf.tensor1d(xs);
    const i = tf.cast(x, 'int32');
    const b = tf.cast(x, 'bool');
    return [i, b, tf.cast(i, 'float32'), tf.cast(b, 'float32'), tf.cast(b, 'int32'), tf.addN([x, x, tf.neg(x)]), tf.clipByValue(x, -1, 1),
      tf.where(tf.greater(x, 0), x, tf.neg(x)), tf.where(tf.tensor1d([true, false], 'bool'), tf.ones([3, 2]), tf.zeros([3, 2])), tf.zerosLike(i), tf.onesLike(x)];
  });
});

test('reductions over all, one, several and negative axes, with keepDims; int32 and bool sums', { skip }, async () => {
  const xs = randomArray(2 * 3 * 4, 51);
  await same(() => {
    const x = tf.tensor(xs, [2, 3, 4]);
    const i = tf.tensor([[1, -2, 3], [4, 5, -6]], [2, 3], 'int32');
    const b = tf.tensor1d([true, false, true], 'bool');
    return [tf.sum(x), tf.sum(x, 0), tf.sum(x, [0, 2], true), tf.sum(x, -1), tf.mean(x), tf.mean(x, [1, 2]), tf.max(x, 1), tf.min(x, [0, 1], true),
      tf.prod(x, [0, 2]), tf.sum(i), tf.sum(i, 1), tf.sum(b), tf.max(i, 0), tf.mean(i, 1), tf.prod(i, 1)];
  });
});

test('All, Any, ArgMax, ArgMin (first index on ties) and Softmax / logSoftmax', { skip }, async () => {
  await same(() => {
    const b = tf.tensor2d([true, false, true, true, true, true], [2, 3], 'bool');
    const t = tf.tensor2d([1, 3, 3, -1, -1, 0], [2, 3]);
    const l = tf.tensor(randomArray(3 * 5, 52, 4), [3, 5]);
    return [tf.all(b), tf.all(b, 1), tf.any(b, 0), tf.any(tf.logicalNot(b)), tf.argMax(t, 1), tf.argMin(t, 1), tf.argMax(t, 0), tf.softmax(l), tf.logSoftmax(l)];
  });
});

test('Reshape, Identity, Transpose, Slice, StridedSlice (negative strides, masks) match cpu', { skip }, async () => {
  const xs = randomArray(4 * 5 * 6, 61);
  await same(() => {
    const x = tf.tensor(xs, [4, 5, 6]);
    return [tf.reshape(x, [-1, 6]), tf.clone(x), tf.transpose(x, [2, 0, 1]), tf.slice(x, [1, 0, 2], [2, -1, 3]),
      tf.stridedSlice(x, [3, 0, 1], [0, 5, 6], [-1, 2, 2]), tf.stridedSlice(x, [1, 0, 0], [2, 5, 6], [1, 1, 1], 0, 0, 0, 0, 1),
      tf.stridedSlice(x, [0, 4], [4, 0], [1, -2], 1, 0, 0, 0, 0), tf.stridedSlice(x, [0, 0, 0], [4, 5, 6], [2, 1, 3], 0, 0, 0, 2, 0)];
  });
});

test('Concat (with an empty input), Pack, Unpack, SplitV, Reverse, PadV2, Tile, BroadcastTo match cpu', { skip }, async () => {
  const xs = randomArray(2 * 3 * 4, 62);
  await same(() => {
    const x = tf.tensor(xs, [2, 3, 4]);
    return [tf.concat([x, tf.zeros([2, 0, 4]), x], 1), tf.concat([tf.tensor1d([1, 2], 'int32'), tf.tensor1d([3], 'int32')]), tf.stack([x, x], 1),
      ...tf.unstack(x, 2), ...tf.split(x, [1, 3], 2), tf.reverse(x, [0, 2]), tf.pad(x, [[1, 0], [0, 2], [1, 1]], 1.5), tf.tile(x, [1, 2, 1]),
      tf.broadcastTo(tf.tensor1d([1, 2, 3]), [2, 3]), tf.logicalXor(tf.tensor1d([true, false], 'bool'), tf.tensor1d([true, true], 'bool'))];
  });
});

test('GatherV2, GatherNd, ScatterNd (duplicates add up), TensorScatterUpdate, UnsortedSegmentSum, OneHot', { skip }, async () => {
  const xs = randomArray(4 * 5, 63);
  await same(() => {
    const x = tf.tensor2d(xs, [4, 5]);
    const idx = tf.tensor2d([[0, 1], [3, 3]], [2, 2], 'int32');
    return [tf.gather(x, tf.tensor1d([3, 0, 3], 'int32')), tf.gather(x, idx, 1), tf.gatherND(x, tf.tensor2d([[1, 2], [3, 0]], [2, 2], 'int32')),
      tf.scatterND(tf.tensor2d([[1], [3], [1]], [3, 1], 'int32'), tf.tensor2d(randomArray(15, 64), [3, 5]), [4, 5]),
      // a copy of the values: tfjs's cpu TensorScatterUpdate writes into its input's array
      tf.tensorScatterUpdate(tf.tensor2d(xs.slice(), [4, 5]), tf.tensor2d([[0, 0], [2, 4]], [2, 2], 'int32'), tf.tensor1d([9, 8])),
      tf.unsortedSegmentSum(x, tf.tensor1d([2, 0, 2, 1], 'int32'), 4), tf.oneHot(tf.tensor1d([0, 3, -1, 2], 'int32'), 4),
      tf.oneHot(tf.tensor1d([1, 0], 'int32'), 3, 5, -2)];
  });
});

test('Fill and Range (float and int, negative step, empty) match cpu', { skip }, async () => {
  await same(() => [tf.fill([2, 3], 2.5), tf.fill([3], 7, 'int32'), tf.range(0, 10, 3), tf.range(5, -3, -2, 'int32'), tf.range(0.5, 2.2, 0.3), tf.range(3, 3)]);
});

test('fused conv2d, fused depthwise conv2d and fused matmul (bias, relu, prelu) match cpu', { skip }, async () => {
  const xs = randomArray(2 * 6 * 6 * 3, 71);
  const fs = randomArray(3 * 3 * 3 * 4, 72, 0.5);
  const ds = randomArray(3 * 3 * 3, 73, 0.5);
  await same(() => {
    const x = tf.tensor4d(xs, [2, 6, 6, 3]);
    const f = tf.tensor4d(fs, [3, 3, 3, 4]);
    const bias = tf.tensor1d([0.1, -0.2, 0.3, 0]);
    const a = tf.tensor2d(randomArray(6 * 5, 74), [6, 5]);
    const b = tf.tensor2d(randomArray(5 * 4, 75), [5, 4]);
    return [
      tf.fused.conv2d({ x, filter: f, strides: 2, pad: 'same', bias, activation: 'relu' }),
      tf.fused.conv2d({ x, filter: f, strides: 1, pad: 'valid', bias, activation: 'prelu', preluActivationWeights: tf.tensor1d([0.1, 0.2, 0.3, 0.4]) }),
      tf.fused.depthwiseConv2d({ x, filter: tf.tensor4d(ds, [3, 3, 3, 1]), strides: 1, pad: 'same', bias: tf.tensor1d([1, 2, 3]), activation: 'relu6' }),
      tf.fused.matMul({ a, b, bias, activation: 'leakyrelu', leakyreluAlpha: 0.1 }),
      tf.fused.matMul({ a: tf.transpose(a), b: tf.transpose(b), transposeA: true, transposeB: true, activation: 'sigmoid' }),
    ];
  });
});

test('AvgPool (and its gradient) and MaxPool match cpu', { skip }, async () => {
  const xs = randomArray(2 * 7 * 7 * 3, 76);
  await same(() => {
    const x = tf.tensor4d(xs, [2, 7, 7, 3]);
    const g = tf.grad((a: tf.Tensor) => tf.sum(tf.square(tf.avgPool(a as tf.Tensor4D, 3, 2, 'valid'))))(x);
    return [tf.avgPool(x, 3, 1, 'same'), tf.avgPool(x, 2, 2, 'valid'), g, tf.maxPool(x, 3, 2, 'valid')];
  });
});

test('inference batch norm (FusedBatchNorm) and Prelu match cpu, 4-D and 2-D', { skip }, async () => {
  const xs = randomArray(2 * 3 * 3 * 4, 81, 2);
  await same(() => {
    const x = tf.tensor4d(xs, [2, 3, 3, 4]);
    const m = tf.tensor1d([0.1, -0.2, 0.3, 0]);
    const v = tf.tensor1d([1, 0.5, 2, 0.1]);
    const x2 = tf.reshape(x, [-1, 4]) as tf.Tensor2D;
    return [tf.batchNorm(x, m, v, tf.tensor1d([1, 2, 3, 4]), tf.tensor1d([0.5, 1, 1.5, 2]), 1e-3), tf.batchNorm(x2, m, v), tf.prelu(x, tf.tensor1d([0.1, 0.2, 0.3, 0.4]) as unknown as tf.Tensor4D)];
  });
});

for (const shape of [[4, 5, 5, 3], [6, 8], [3, 7, 6, 16]]) {
  test(`training batch norm (native_batch_norm and its backward) equals cpu, x[${shape}]`, { skip }, async () => {
    const size = shape.reduce((p, q) => p * q, 1);
    const c = shape[shape.length - 1];
    const xs = randomArray(size, 82, 2);
    const gs = randomArray(c, 83);
    const bs = randomArray(c, 84);
    const dys = randomArray(size, 85);
    const stats: Float32Array[] = [];
    await same(() => {
      const x = tf.tensor(xs, shape);
      const dy = tf.tensor(dys, shape);
      const grads = tf.grads((a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(batchNormTrain(a, g as tf.Tensor1D, b as tf.Tensor1D), dy)))([x, tf.tensor1d(gs), tf.tensor1d(bs)]);
      batchNormTrain(x, tf.tensor1d(gs), tf.tensor1d(bs), 1e-5, (st) => stats.push(st.mean.dataSync() as Float32Array, st.variance.dataSync() as Float32Array));
      return [batchNormTrain(x, tf.tensor1d(gs), tf.tensor1d(bs)), ...grads];
    }, 1e-3);
    // batch statistics handed to onStats (running averages): mean and biased variance agree too
    assert.ok(maxRelErr(stats[2], stats[0]) < 1e-5 && maxRelErr(stats[3], stats[1]) < 1e-4, 'batch statistics');
  });
}

test('PReLU gradient (prelu_backward) equals cpu', { skip }, async () => {
  const xs = randomArray(3 * 4 * 4 * 5, 86);
  const as = randomArray(5, 87, 0.3);
  const dys = randomArray(xs.length, 88);
  await same(() => {
    const x = tf.tensor4d(xs, [3, 4, 4, 5]);
    const dy = tf.tensor4d(dys, [3, 4, 4, 5]);
    const x2 = tf.reshape(x, [-1, 5]);
    const dy2 = tf.reshape(dy, [-1, 5]);
    return [
      prelu(x, tf.tensor1d(as)),
      ...tf.grads((u: tf.Tensor, v: tf.Tensor) => tf.sum(tf.mul(prelu(u, v), dy)))([x, tf.tensor1d(as)]),
      ...tf.grads((u: tf.Tensor, v: tf.Tensor) => tf.sum(tf.mul(prelu(u, v), dy2)))([x2, tf.tensor1d(as)]),
    ];
  });
});

test('SGD step (one fused pass on torch) and global-norm clipping (one dot product per gradient) equal cpu', { skip }, async () => {
  const ws = randomArray(3 * 70, 95);
  const gs = randomArray(3 * 70, 96, 4);
  await same(() => {
    const w = tf.variable(tf.tensor2d(ws, [3, 70]));
    const sgd = new Sgd([w], { momentum: 0.9, weightDecay: 5e-4 });
    const g = tf.tensor2d(gs, [3, 70]);
    sgd.step([g], 0.1);
    sgd.step([tf.mul(g, -0.5)], 0.05);
    const clipped = clipByGlobalNorm([g, tf.mul(g, 2)], 5);
    const out = [w.clone(), sgd.momentumBuffers()[0].clone(), ...clipped.grads, tf.scalar(clipped.norm)];
    sgd.dispose();
    w.dispose();
    return out;
  });
});

test('native graph kernels (a backbone forward and backward, one kernel each) and the class encoder\'s EMA step equal cpu', { skip }, async () => {
  // MobileFaceNet at scale 1 and width 0.25: channels-last convolutions of every kind (a grouped one with
  // 2 channels in and out per group) and batch norm + PReLU units; test/engine/torch/nativeGraph.test.ts
  // covers every backbone, the modes, dropout and the tape's lifetime
  const xs = randomArray(3 * 16 * 16 * 3, 97);
  await same(() => {
    const opts = { inputSize: 16, widthMultiplier: 0.25, embeddingSize: 8, mbfScale: 1, seed: 4 };
    const fq = createBackbone('mbf', opts);
    const fk = createBackbone('mbf', { ...opts, seed: 5 });
    const x = tf.tensor4d(xs, [3, 16, 16, 3]);
    const { value, grads } = tf.variableGrads(() => tf.sum(tf.square(fq.apply(x, true))) as tf.Scalar, fq.trainableVariables());
    const enc = new ClassEncoder(fq, fk, 0.9);
    fq.trainableVariables().forEach((v) => v.assign(tf.sub(v, tf.mul(grads[v.name], 0.1))));
    enc.update();
    const out = [value, ...fq.trainableVariables().map((v) => grads[v.name]), ...fk.variables().map((v) => v.variable.clone()), fq.apply(x, false)];
    fq.dispose();
    fk.dispose();
    return out;
    // element by element through 17 batch norms over 3 samples float32 rounding reaches 3e-3 (the op-by-op
    // path shows the same); a wrong kernel is off by 1e-1 and more
  }, 1e-2);
});

test('depthwise conv with channel multiplier 2: both gradients match cpu (the wasm pack refuses this)', { skip }, async () => {
  const xs = randomArray(2 * 6 * 6 * 3, 91);
  const fs = randomArray(3 * 3 * 3 * 2, 92, 0.5);
  await same(() => {
    const x = tf.tensor4d(xs, [2, 6, 6, 3]);
    const f = tf.tensor4d(fs, [3, 3, 3, 2]);
    return tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 'same'))))([x, f]);
  });
});

test('a libtorch error becomes a JS exception with libtorch\'s message, and the process goes on', { skip }, async () => {
  await tf.setBackend('torch');
  const b = tf.backend() as TorchBackend;
  const a = b.native.fromArray(new Float32Array(6), [2, 3], 'float32', 'cpu');
  assert.throws(() => b.aten.t('mm', a, a), /mat1 and mat2 shapes cannot be multiplied \(2x3 and 2x3\)/);
  assert.throws(() => b.aten.t('reshape', a, [4, 4]), /shape '\[4, 4\]' is invalid for input of size 6/);
  assert.throws(() => b.native.free(123456), /not live/);
  b.native.free(a);
  assert.equal(tf.tidy(() => tf.add(tf.scalar(1), tf.scalar(2)).dataSync()[0]), 3);
});

test('a kernel backend torch does not implement fails with one line naming it (no silent fallback)', { skip }, async () => {
  await tf.setBackend('torch');
  const x = tf.tensor1d([1, 2, 3]);
  assert.throws(() => tf.cumsum(x), (e: Error) => e.message === 'attfc: kernel Cumsum is not implemented on backend torch');
  x.dispose();
});

test('repeated gradient steps leave no tensors behind, in tfjs or in the addon', { skip }, async () => {
  await tf.setBackend('torch');
  const b = tf.backend() as TorchBackend;
  const x = tf.tensor4d(randomArray(2 * 8 * 8 * 4, 93), [2, 8, 8, 4]);
  const f = tf.tensor4d(randomArray(3 * 3 * 4 * 4, 94), [3, 3, 4, 4]);
  const step = () =>
    tf.tidy(() => {
      const g = tf.grads((a: tf.Tensor, w: tf.Tensor) => tf.sum(batchNormTrain(prelu(tf.conv2d(a as tf.Tensor4D, w as tf.Tensor4D, 2, 'same'), tf.fill([4], 0.25)), tf.ones([4]) as tf.Tensor1D, tf.zeros([4]) as tf.Tensor1D)))([x, f]);
      const h = tf.grads((a: tf.Tensor) => tf.sum(tf.depthwiseConv2d(a as tf.Tensor4D, tf.ones([3, 3, 4, 1]) as tf.Tensor4D, 2, 'same')))([x]);
      return tf.add(tf.sum(g[0]), tf.sum(h[0]));
    }).dispose();
  step();
  const before = { ids: b.numDataIds(), handles: b.native.memory().handles, tensors: tf.memory().numTensors };
  for (let i = 0; i < 5; i++) step();
  assert.deepEqual({ ids: b.numDataIds(), handles: b.native.memory().handles, tensors: tf.memory().numTensors }, before);
  tf.dispose([x, f]);
});

test('this file ran every kernel registered for backend torch', { skip }, () => {
  const missing = Object.keys(TORCH_KERNELS).filter((k) => !kernelsRun.has(k));
  assert.deepEqual(missing, []);
});
