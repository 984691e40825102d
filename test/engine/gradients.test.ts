// The engine registers tfjs-core's gradients itself (core's Node build has none): in a fresh process
// that imports only the engine, tf.grad works and tfjs-layers was never loaded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

const CHILD = `
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine, shutdownEngine } from './src/engine/index.ts';
await initEngine({ backend: 'cpu', log: false });
const kernels = ['Square', 'Multiply', 'Sum', 'BatchMatMul', 'Conv2D', 'DepthwiseConv2dNative', 'Relu', 'Prelu', 'Exp', 'Log', 'Max', 'Sqrt', 'RealDiv', 'Cast'];
const missing = kernels.filter((k) => tf.getGradient(k) === undefined);
// d/dx sum(x^2 * w) = 2 x w, d/dw = x^2
const x = tf.tensor1d([1, 2, 3]);
const w = tf.tensor1d([0.5, -1, 2]);
const [gx, gw] = tf.grads((a, b) => tf.sum(tf.mul(tf.square(a), b)))([x, w]);
const layers = Object.keys(createRequire(import.meta.url).cache).filter((k) => k.includes('tfjs-layers'));
console.log(JSON.stringify({ missing, gx: Array.from(gx.dataSync()), gw: Array.from(gw.dataSync()), layers }));
shutdownEngine();
`;

test('gradients come from tfjs-core/dist/register_all_gradients, without importing tfjs-layers', () => {
  assert.ok(existsSync(require.resolve('@tensorflow/tfjs-core/dist/register_all_gradients')));
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHILD], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { missing: string[]; gx: number[]; gw: number[]; layers: string[] };
  assert.deepEqual(out.missing, []);
  assert.deepEqual(out.gx, [1, -4, 12]);
  assert.deepEqual(out.gw, [1, 4, 9]);
  assert.deepEqual(out.layers, [], 'tfjs-layers was loaded by the engine');
});
