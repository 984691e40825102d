import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { setupEngine } from '../helpers/engine.js';
import {
  ARCFACE,
  COSFACE,
  fallbackThreshold,
  marginLogits,
  marginSoftmaxLoss,
  marginTargetLogit,
  type MarginOptions,
} from '../../src/heads/margin.js';
import { refMarginSoftmax, refMarginValue } from '../../src/heads/reference.js';
import { AttfcError } from '../../src/errors.js';

await setupEngine();

const EXACT_ARC: MarginOptions = { ...ARCFACE, gradient: 'exact' };

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, rel = 2e-5, abs = 2e-5): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const tol = abs + rel * Math.abs(expected[i]);
    assert.ok(Math.abs(actual[i] - expected[i]) <= tol, `${what}[${i}]: got ${actual[i]}, expected ${expected[i]} (tol ${tol})`);
  }
}

/** Values and d(sum(w * out))/dc of marginTargetLogit for the given cosines. */
function targetValueAndGrad(cos: number[], opts: MarginOptions, weights?: number[]): { value: Float32Array; grad: Float32Array } {
  const c = tf.tensor1d(cos);
  const w = tf.tensor1d(weights ?? cos.map(() => 1));
  const value = tf.tidy(() => marginTargetLogit(c, opts));
  const grad = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(marginTargetLogit(x as tf.Tensor1D, opts), w)))(c);
  const out = { value: value.dataSync() as Float32Array, grad: grad.dataSync() as Float32Array };
  tf.dispose([c, w, value, grad]);
  return out;
}

/** Central finite difference of a float64 function. */
function fd(f: (x: number) => number, x: number, h = 1e-6): number {
  return (f(x + h) - f(x - h)) / (2 * h);
}

test('ArcFace straight-through: s*cos(acos(c)+m) forward, identity (times s) backward, clamp first', () => {
  const cos = [0.8, 0.3, 0, -0.5, -0.95, 1.3, -2];
  const { value, grad } = targetValueAndGrad(cos, ARCFACE);
  // expected = 64 * cos(acos(clamp(c, -1, 1)) + 0.5); no fallback in this mode (arcface_torch today),
  // e.g. c = 0.8: 0.8*cos(0.5) - 0.6*sin(0.5) = 0.70207 - 0.28766 = 0.41441 -> 26.5223
  const expected = cos.map((c) => 64 * Math.cos(Math.acos(Math.min(1, Math.max(-1, c))) + 0.5));
  assertClose(value, expected, 'value', 1e-5, 1e-4);
  assert.ok(Math.abs(value[0] - 26.5223) < 1e-3, `c=0.8 gives ${value[0]}`);
  // c = -0.95 is past pi - m: -0.95*cos(0.5) - sqrt(1-0.9025)*sin(0.5) = -0.98340, the reference's
  // non-monotonic value (the exact mode would fall back to c - m*sin(m) here)
  assert.ok(Math.abs(value[4] - 64 * -0.9834) < 2e-3, `c=-0.95 gives ${value[4]}`);
  // dL/dc = s inside [-1, 1] (margin treated as identity), 0 where the clamp cut the input
  assertClose(grad, [64, 64, 64, 64, 64, 0, 0], 'grad');
});

test('ArcFace exact: differentiable cos(theta+m), th/mm fallback, matches finite differences', () => {
  const m = 0.5;
  const th = Math.cos(Math.PI - m); // -0.87758: at or below it theta + m >= pi
  assert.ok(Math.abs(fallbackThreshold(EXACT_ARC) - th) < 1e-12);
  const cos = [0.9, 0.6, 0.1, -0.4, -0.85, -0.9, -0.99];
  // value: c > th ? cos(acos(c) + m) : c - m*sin(m)   (insightface: th = cos(pi-m), mm = sin(pi-m)*m)
  const f = (c: number) => (c > th ? Math.cos(Math.acos(c) + m) : c - Math.sin(Math.PI - m) * m);
  const { value, grad } = targetValueAndGrad(cos, EXACT_ARC);
  assertClose(value, cos.map((c) => 64 * f(c)), 'value', 1e-5, 1e-4);
  // c = -0.9 falls back: 64 * (-0.9 - 0.5*sin(0.5)) = 64 * -1.13971 = -72.9415
  assert.ok(Math.abs(value[5] - -72.9415) < 1e-3, `c=-0.9 gives ${value[5]}`);
  // derivative: c > th ? cos m + sin m * c / sqrt(1-c^2) : 1, times s
  const d = (c: number) => (c > th ? Math.cos(m) + (Math.sin(m) * c) / Math.sqrt(1 - c * c) : 1);
  assertClose(grad, cos.map((c) => 64 * d(c)), 'grad', 1e-4, 1e-4);
  // independent check of the formula: finite differences of the float64 margin
  assertClose(grad, cos.map((c) => 64 * fd(f, c)), 'grad vs finite differences', 1e-4, 1e-3);
});

test('exact mode keeps a finite gradient at c = +-1', () => {
  const { grad } = targetValueAndGrad([1, 0.9999999, -1], EXACT_ARC);
  for (const g of grad) assert.ok(Number.isFinite(g), `gradient ${g}`);
});

test('CosFace: s*(c - m3) with gradient s in both modes', () => {
  const cos = [0.7, 0, -0.6];
  for (const gradient of ['straight-through', 'exact'] as const) {
    const { value, grad } = targetValueAndGrad(cos, { ...COSFACE, gradient });
    // 64 * (c - 0.4): 0.7 -> 19.2, 0 -> -25.6, -0.6 -> -64
    assertClose(value, [19.2, -25.6, -64], `${gradient} value`, 1e-6, 1e-4);
    assertClose(grad, [64, 64, 64], `${gradient} grad`);
  }
});

test('combined margins (m1, m2, m3) in exact mode match the formula and finite differences', () => {
  for (const opts of [
    { s: 30, m1: 1, m2: 0.3, m3: 0.2, gradient: 'exact' as const },
    { s: 16, m1: 1.5, m2: 0.2, m3: 0.1, gradient: 'exact' as const },
  ]) {
    const cos = [0.95, 0.5, 0, -0.3, -0.7];
    const f = (c: number) => refMarginValue(c, opts);
    // main region: cos(m1*acos(c) + m2) - m3
    const thetaMax = (Math.PI - opts.m2) / opts.m1;
    for (const c of cos) if (Math.acos(c) < thetaMax) assert.ok(Math.abs(f(c) - (Math.cos(opts.m1 * Math.acos(c) + opts.m2) - opts.m3)) < 1e-12);
    const { value, grad } = targetValueAndGrad(cos, opts, [1, -2, 0.5, 3, 1]);
    assertClose(value, cos.map((c) => opts.s * f(c)), `m1 ${opts.m1} value`, 1e-5, 1e-4);
    assertClose(grad, cos.map((c, i) => [1, -2, 0.5, 3, 1][i] * opts.s * fd(f, c)), `m1 ${opts.m1} grad vs finite differences`, 1e-4, 1e-3);
  }
});

test('marginLogits: clamp and scale every column, margin on the target column only, -1 rows untouched', () => {
  const cos = tf.tensor2d([
    [0.2, 0.6, -0.3],
    [1.2, -0.1, 0.4],
  ]);
  const target = tf.tensor1d([1, -1], 'int32');
  const logits = marginLogits(cos, target, ARCFACE);
  // row 0: 64*0.2, 64*cos(acos(0.6)+0.5), 64*-0.3 ; row 1 (no target): 64*clamp(c)
  const expected = [12.8, 64 * Math.cos(Math.acos(0.6) + 0.5), -19.2, 64, -6.4, 25.6];
  assertClose(logits.dataSync(), expected, 'logits', 1e-5, 1e-4);
  tf.dispose([cos, target, logits]);
});

test('marginSoftmaxLoss equals the plain-loop reference (loss and dL/dcos), -1 rows left out of the mean', () => {
  const cosRows = [
    [0.31, -0.12, 0.55, 0.05],
    [-0.2, 0.44, 0.1, -0.6],
    [0.05, 0.02, -0.33, 0.71],
  ];
  const targets = [2, -1, 3];
  for (const opts of [ARCFACE, EXACT_ARC, COSFACE, { ...ARCFACE, s: 8 }]) {
    const ref = refMarginSoftmax(cosRows, targets, opts);
    const cos = tf.tensor2d(cosRows);
    const target = tf.tensor1d(targets, 'int32');
    const { value, grads } = tf.valueAndGrads((c: tf.Tensor) => marginSoftmaxLoss(c as tf.Tensor2D, target, opts))([cos]);
    const what = `${opts.gradient} s=${opts.s} m2=${opts.m2} m3=${opts.m3}`;
    assertClose([value.dataSync()[0]], [ref.loss], `${what} loss`, 1e-5, 1e-4);
    assertClose(grads[0].dataSync(), ref.dCos.flat(), `${what} dcos`, 1e-4, 1e-5);
    tf.dispose([cos, target, value, ...grads]);
  }
});

test('straight-through gradient is s * (softmax - onehot) / rows, also on the target column', () => {
  const cosRows = [
    [0.4, 0.1],
    [-0.3, 0.2],
  ];
  const cos = tf.tensor2d(cosRows);
  const target = tf.tensor1d([0, 1], 'int32');
  const g = tf.grad((c: tf.Tensor) => marginSoftmaxLoss(c as tf.Tensor2D, target, ARCFACE))(cos);
  const expected: number[] = [];
  cosRows.forEach((row, i) => {
    const t = i; // targets 0 and 1
    const z = row.map((c, j) => 64 * (j === t ? Math.cos(Math.acos(c) + 0.5) : c));
    const mx = Math.max(...z);
    const e = z.map((v) => Math.exp(v - mx));
    const sum = e.reduce((a, b) => a + b, 0);
    e.forEach((v, j) => expected.push((64 * (v / sum - (j === t ? 1 : 0))) / 2));
  });
  assertClose(g.dataSync(), expected, 'grad', 1e-4, 1e-5);
  tf.dispose([cos, target, g]);
});

test('invalid margin settings are user errors naming the key', () => {
  const c = tf.tensor1d([0.5]);
  assert.throws(() => marginTargetLogit(c, { ...ARCFACE, m1: 0 }), (e: unknown) => e instanceof AttfcError && /m1/.test(e.message));
  assert.throws(() => marginTargetLogit(c, { ...ARCFACE, s: -1 }), (e: unknown) => e instanceof AttfcError && /\bs\b/.test(e.message));
  assert.throws(() => marginTargetLogit(c, { ...ARCFACE, m2: 4 }), (e: unknown) => e instanceof AttfcError && /m2/.test(e.message));
  c.dispose();
});

test('l2Normalize: closed-form backward equals autodiff of x * rsqrt(sum(x^2)), fused rows and the op path', async () => {
  const { l2Normalize } = await import('../../src/heads/margin.js');
  const x = tf.tensor2d([[3, 4, 0], [1, -2, 2], [0.5, 0.1, -0.3], [0, 0, 0]]);
  const dy = tf.tensor2d([[1, 2, 3], [-1, 0.5, 2], [0.3, -0.7, 1], [1, 1, 1]]);
  const ref = (a: tf.Tensor) => tf.mul(a, tf.rsqrt(tf.maximum(tf.sum(tf.square(a), 1, true), 1e-24)));
  const gRef = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(ref(a), dy)))(x).arraySync() as number[][];
  const gRows = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(l2Normalize(a, 1), dy)))(x).arraySync() as number[][];
  const xt = tf.transpose(x);
  const gCols = tf.transpose(tf.grad((a: tf.Tensor) => tf.sum(tf.mul(l2Normalize(a, 0), tf.transpose(dy))))(xt)).arraySync() as number[][];
  const vals = l2Normalize(x, 1).arraySync() as number[][];
  assert.deepEqual(vals[0].map((v) => +v.toFixed(6)), [0.6, 0.8, 0]);
  for (const g of [gRows, gCols])
    for (let i = 0; i < 4; i++) for (let j = 0; j < 3; j++) assert.ok(Math.abs(g[i][j] - gRef[i][j]) < 1e-5, `grad [${i}][${j}] ${g[i][j]} vs ${gRef[i][j]}`);
  tf.dispose([x, dy, xt]);
});
