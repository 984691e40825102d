// EMA class encoder f_k: exact initial copy, closed-form EMA, buffers untouched, no tape.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { setupEngine } from '../helpers/engine.js';
import { ClassEncoder } from '../../src/heads/attfc/index.js';
import { TinyBackbone, maxAbsDiff } from './attfcFixtures.js';

await setupEngine({ backend: 'cpu' });

const values = (v: tf.Variable) => Array.from(v.dataSync());

test('f_k starts as an exact copy of f_q (parameters and buffers) and is not trainable', () => {
  const fq = new TinyBackbone(6, 4, 1);
  fq.runningMean.assign(tf.tensor1d([1, 2, 3, 4]));
  const fk = new TinyBackbone(6, 4, 2);
  assert.ok(maxAbsDiff(values(fq.weight), values(fk.weight)) > 0.01);
  const enc = new ClassEncoder(fq, fk);
  fq.variables().forEach((v, i) => assert.deepEqual(values(fk.variables()[i].variable), values(v.variable)));
  assert.ok(fk.variables().every((v) => !v.variable.trainable));
  assert.ok(fq.weight.trainable);
  assert.equal(enc.momentum, 0.999);
  // a copy, not shared storage
  fq.weight.assign(tf.zerosLike(fq.weight));
  assert.ok(maxAbsDiff(values(fk.weight), values(fq.weight)) > 0.01);
  fq.dispose();
  fk.dispose();
});

test('after n updates theta_k = m^n theta_k0 + (1 - m^n) theta_q for constant theta_q; buffers untouched', () => {
  const fq = new TinyBackbone(5, 3, 3);
  const fk = new TinyBackbone(5, 3, 4);
  const m = 0.9;
  const enc = new ClassEncoder(fq, fk, m);
  // move f_q away from the copy, then hold it constant
  const k0 = values(fk.weight);
  const s0 = values(fk.scale);
  fq.weight.assign(tf.add(fq.weight, tf.randomNormal(fq.weight.shape, 0, 1, 'float32', 5)));
  fq.scale.assign(tf.mul(fq.scale, 3));
  fq.runningMean.assign(tf.fill([3], 7));
  fk.runningMean.assign(tf.tensor1d([0.5, -0.5, 2]));
  const q = values(fq.weight);
  const qs = values(fq.scale);
  const n = 13;
  for (let i = 0; i < n; i++) enc.update();
  const mn = m ** n;
  const expect = k0.map((x, i) => mn * x + (1 - mn) * q[i]);
  const expectScale = s0.map((x, i) => mn * x + (1 - mn) * qs[i]);
  assert.ok(maxAbsDiff(values(fk.weight), expect) < 1e-5, 'param follows the closed form');
  assert.ok(maxAbsDiff(values(fk.scale), expectScale) < 1e-5, 'frozen follows the closed form');
  assert.deepEqual(values(fk.runningMean), [0.5, -0.5, 2]);
  assert.deepEqual(values(fq.weight), q, 'f_q is not changed by the EMA');
  fq.dispose();
  fk.dispose();
});

test('embed: training-mode f_k (its own running statistics move, f_q untouched); refused under a tape', () => {
  const fq = new TinyBackbone(4, 3, 6);
  const fk = new TinyBackbone(4, 3, 7);
  const enc = new ClassEncoder(fq, fk);
  const x = tf.randomNormal([5, 2, 2, 1], 0, 1, 'float32', 8) as tf.Tensor4D;
  const before = tf.memory().numTensors;
  const e = enc.embed(x);
  assert.deepEqual(e.shape, [5, 3]);
  assert.ok(maxAbsDiff(values(fk.runningMean), [0, 0, 0]) > 1e-4, 'f_k running mean updated');
  assert.deepEqual(values(fq.runningMean), [0, 0, 0]);
  e.dispose();
  assert.equal(tf.memory().numTensors, before);
  assert.throws(() => tf.variableGrads(() => tf.sum(enc.embed(x)) as tf.Scalar, [fq.weight]), /gradient tape/);
  x.dispose();
  fq.dispose();
  fk.dispose();
});

test('getState/setState carries the momentum and rejects invalid ones', () => {
  const fq = new TinyBackbone(4, 3, 9);
  const fk = new TinyBackbone(4, 3, 10);
  const enc = new ClassEncoder(fq, fk, 0.99);
  const other = new ClassEncoder(fq, new TinyBackbone(4, 3, 11));
  other.setState(enc.getState());
  assert.equal(other.momentum, 0.99);
  assert.throws(() => other.setState({ momentum: 1.5 }), /momentum must be a number in \[0, 1\]/);
  assert.throws(() => new ClassEncoder(fq, fq), /two backbone instances/);
});
