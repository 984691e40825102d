import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { setupEngine } from '../helpers/engine.js';
import { AttfcError } from '../../src/errors.js';
import {
  BACKBONE_NAMES,
  backboneParamCount,
  backboneSpec,
  createBackbone,
  paramSpecs,
  resolveBackboneOptions,
} from '../../src/backbones/index.js';

await setupEngine({ backend: 'cpu' });

test('reference parameter counts match insightface arcface_torch', () => {
  assert.equal(backboneParamCount('r18'), 24_025_600);
  assert.equal(backboneParamCount('r34'), 34_139_328);
  assert.equal(backboneParamCount('r50'), 43_590_848);
  assert.equal(backboneParamCount('r100'), 65_156_160);
  assert.equal(backboneParamCount('mbf'), 2_059_520);
  // Every registered name has a spec.
  for (const n of BACKBONE_NAMES) assert.ok(backboneParamCount(n, { inputSize: 32, widthMultiplier: 0.125 }) > 0, n);
});

test('a built r18 and mbf agree with their shape tables', () => {
  const r18 = createBackbone('r18', { inputSize: 32 });
  const specs = paramSpecs(backboneSpec('r18', resolveBackboneOptions({ inputSize: 32 })));
  try {
    assert.equal(r18.paramCount(), backboneParamCount('r18', { inputSize: 32 }));
    const vars = r18.variables();
    assert.deepEqual(vars.map((v) => [v.name, v.kind, v.variable.shape]), specs.map((s) => [s.name, s.kind, s.shape]));
  } finally {
    r18.dispose();
  }
  const mbf = createBackbone('mbf');
  try {
    assert.equal(mbf.paramCount(), 2_059_520);
  } finally {
    mbf.dispose();
  }
});

test('variable names follow the PyTorch state_dict, with kinds', () => {
  const b = createBackbone('r18', { inputSize: 32, widthMultiplier: 0.125 });
  try {
    const vars = b.variables();
    const names = vars.map((v) => v.name);
    assert.deepEqual(names.slice(0, 8), [
      'conv1.weight', 'bn1.weight', 'bn1.bias', 'bn1.running_mean', 'bn1.running_var', 'prelu.weight',
      'layer1.0.bn1.weight', 'layer1.0.bn1.bias',
    ]);
    assert.ok(names.includes('layer1.0.downsample.0.weight'));
    assert.ok(!names.includes('layer1.1.downsample.0.weight'));
    assert.deepEqual(names.slice(-6), ['fc.weight', 'fc.bias', 'features.weight', 'features.bias', 'features.running_mean', 'features.running_var']);
    const kind = new Map(vars.map((v) => [v.name, v.kind]));
    assert.equal(kind.get('features.weight'), 'frozen');
    assert.equal(kind.get('bn1.running_var'), 'buffer');
    assert.equal(kind.get('fc.weight'), 'param');
    assert.equal(b.trainableVariables().length, vars.filter((v) => v.kind === 'param').length);
    assert.ok(b.trainableVariables().every((v) => v.trainable));
    assert.equal(vars.find((v) => v.name === 'features.weight')!.variable.trainable, false);
    assert.equal(new Set(names).size, names.length);
  } finally {
    b.dispose();
  }
  const m = createBackbone('mbf', { inputSize: 32, widthMultiplier: 0.25 });
  try {
    const names = m.variables().map((v) => v.name);
    assert.equal(names[0], 'layers.0.layers.0.weight');
    assert.ok(names.includes('conv_sep.layers.0.weight'));
    assert.deepEqual(names.slice(-5), [
      'features.layers.2.weight', 'features.layers.3.weight', 'features.layers.3.bias',
      'features.layers.3.running_mean', 'features.layers.3.running_var',
    ]);
  } finally {
    m.dispose();
  }
});

test('width multiplier scales channels (rounded, min 8) and the embedding size is separate', () => {
  const spec = paramSpecs(backboneSpec('r18', resolveBackboneOptions({ inputSize: 32, widthMultiplier: 0.25, embeddingSize: 128 })));
  const shape = (n: string) => spec.find((s) => s.name === n)!.shape;
  assert.deepEqual(shape('conv1.weight'), [3, 3, 3, 16]);
  assert.deepEqual(shape('layer4.1.conv2.weight'), [3, 3, 128, 128]);
  assert.deepEqual(shape('fc.weight'), [128 * 2 * 2, 128]);
  const tiny = paramSpecs(backboneSpec('r18', resolveBackboneOptions({ widthMultiplier: 0.05 })));
  assert.deepEqual(tiny.find((s) => s.name === 'conv1.weight')!.shape, [3, 3, 3, 8]);
  assert.ok(backboneParamCount('r50', { widthMultiplier: 0.5 }) < backboneParamCount('r50'));
});

test('initialisation is seeded and follows the reference rules', () => {
  const tensorsBefore = tf.memory().numTensors;
  const opts = { inputSize: 32, widthMultiplier: 0.25, seed: 7 };
  const a = createBackbone('r18', opts);
  const b = createBackbone('r18', opts);
  const c = createBackbone('r18', { ...opts, seed: 8 });
  try {
    const w = (x: typeof a, n: string) => x.variables().find((v) => v.name === n)!.variable.dataSync() as Float32Array;
    assert.deepEqual(w(a, 'layer2.0.conv1.weight'), w(b, 'layer2.0.conv1.weight'));
    assert.notDeepEqual(w(a, 'layer2.0.conv1.weight'), w(c, 'layer2.0.conv1.weight'));
    const conv = w(a, 'layer3.0.conv2.weight');
    const std = Math.sqrt(conv.reduce((s, v) => s + v * v, 0) / conv.length);
    assert.ok(Math.abs(std - 0.1) < 0.01, `conv std ${std}, expected ~0.1`);
    assert.ok(w(a, 'prelu.weight').every((v) => v === 0.25));
    assert.ok(w(a, 'bn1.weight').every((v) => v === 1) && w(a, 'bn1.bias').every((v) => v === 0));
    const fc = w(a, 'fc.weight');
    const bound = 1 / Math.sqrt(128 * 2 * 2); // fan_in = 128 channels (512 x 0.25) x 2 x 2
    const maxAbs = fc.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    assert.ok(maxAbs <= bound && maxAbs > 0.9 * bound, `fc weights within U(-${bound}, ${bound}), max ${maxAbs}`);
  } finally {
    a.dispose();
    b.dispose();
    c.dispose();
  }
  assert.equal(tf.memory().numTensors, tensorsBefore, 'dispose() frees every variable');
});

test('bad names and options are one-line user errors naming the field', () => {
  assert.throws(() => createBackbone('r19'), (e: unknown) => e instanceof AttfcError && /backbone: unknown name "r19"; expected one of r18/.test(e.message));
  assert.throws(() => backboneParamCount('r18', { inputSize: 8 }), (e: unknown) => e instanceof AttfcError && /inputSize 8/.test(e.message));
  assert.throws(() => backboneParamCount('r18', { inputSize: 33.5 }), AttfcError);
  assert.throws(() => backboneParamCount('r18', { widthMultiplier: 0 }), /widthMultiplier 0/);
  assert.throws(() => backboneParamCount('r18', { dropout: 1 }), /dropout 1/);
  assert.throws(() => backboneParamCount('r18', { embeddingSize: 0 }), /embeddingSize 0/);
  assert.throws(() => backboneParamCount('mbf', { fp16: true } as never), /fp16/);
});
