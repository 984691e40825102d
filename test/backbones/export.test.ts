import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, truncate } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { setupEngine } from '../helpers/engine.js';
import { AttfcError } from '../../src/errors.js';
import { createBackbone, loadEmbeddingModel, saveEmbeddingModel, toLayersModel, type Backbone } from '../../src/backbones/index.js';

await setupEngine({ backend: 'cpu' });

/** max |a-b| relative to the output scale (eval-mode activations of a fresh net can be large). */
function relativeDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0] / Math.max(1, tf.max(tf.abs(b)).dataSync()[0]));
}

/** A small backbone whose running statistics and weights are no longer at their initial values. */
function trainedLike(name: string, widthMultiplier: number): { b: Backbone; x: tf.Tensor4D } {
  const b = createBackbone(name, { inputSize: 32, widthMultiplier, embeddingSize: 16, seed: 2 });
  const x = tf.randomNormal([3, 32, 32, 3], 0, 1, 'float32', 8) as tf.Tensor4D;
  tf.tidy(() => {
    b.variables().forEach((v, i) => {
      if (v.kind === 'param') v.variable.assign(tf.add(v.variable, tf.randomNormal(v.variable.shape, 0, 0.05, 'float32', i)));
    });
    for (let i = 0; i < 3; i++) b.apply(x, true);
  });
  return { b, x };
}

const STANDARD_LAYERS = new Set([
  'InputLayer', 'ZeroPadding2D', 'Conv2D', 'DepthwiseConv2D', 'BatchNormalization', 'PReLU', 'Add', 'Flatten', 'Dense',
  'Reshape', 'AveragePooling1D',
]);

for (const [name, width] of [['mbf', 0.25], ['r18', 0.125]] as const) {
  test(`toLayersModel(${name}) equals apply(x, false) and uses only standard layers`, () => {
    const { b, x } = trainedLike(name, width);
    const model = toLayersModel(b);
    try {
      const expected = b.apply(x, false);
      const got = model.predict(x) as tf.Tensor;
      assert.deepEqual(got.shape, expected.shape);
      const d = relativeDiff(got, expected);
      assert.ok(d < 1e-4, `max relative difference ${d}`);
      const classes = new Set(model.layers.map((l) => l.getClassName()));
      for (const c of classes) assert.ok(STANDARD_LAYERS.has(c), `non-standard layer ${c}`);
      assert.ok(classes.has('ZeroPadding2D') && classes.has('BatchNormalization') && classes.has('PReLU'));
      if (name === 'mbf') assert.ok(classes.has('DepthwiseConv2D') && classes.has('AveragePooling1D'));
      // The model holds copies: training the backbone further does not change it.
      tf.tidy(() => b.apply(x, true));
      const again = model.predict(x) as tf.Tensor;
      assert.equal(relativeDiff(again, got), 0);
      tf.dispose([expected, got, again]);
    } finally {
      model.dispose();
      b.dispose();
      x.dispose();
    }
  });
}

test('saveEmbeddingModel -> loadEmbeddingModel round trip; model.json is a standard layers model', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'attfc-backbone-'));
  const { b, x } = trainedLike('mbf', 0.25);
  try {
    const target = path.join(dir, 'model');
    await saveEmbeddingModel(b, target, { attfcVersion: '0.1.0', embeddingSize: 16, note: 'test' });
    assert.deepEqual((await readdir(target)).sort(), ['model.json', 'weights.bin']); // no temp files left
    const json = JSON.parse(await readFile(path.join(target, 'model.json'), 'utf8'));
    assert.equal(json.format, 'layers-model');
    assert.deepEqual(json.weightsManifest[0].paths, ['weights.bin']);
    assert.ok(json.modelTopology.model_config || json.modelTopology.class_name);
    assert.deepEqual(
      { ...json.userDefinedMetadata },
      { backbone: 'mbf', inputSize: 32, inputLayout: 'NHWC RGB', normalization: '(x/255-0.5)/0.5', embeddingSize: 16, widthMultiplier: 0.25, attfcVersion: '0.1.0', note: 'test' },
    );

    const expected = b.apply(x, false);
    const { model, metadata } = await loadEmbeddingModel(target);
    const got = model.predict(x) as tf.Tensor;
    assert.ok(relativeDiff(got, expected) < 1e-4);
    assert.equal(metadata.backbone, 'mbf');
    assert.equal(metadata.attfcVersion, '0.1.0');

    // Loadable by plain tfjs-layers from the files alone (what a browser or another program does).
    const bytes = await readFile(path.join(target, 'weights.bin'));
    const plain = await tfl.loadLayersModel(
      tf.io.fromMemory({
        modelTopology: json.modelTopology,
        weightSpecs: json.weightsManifest[0].weights,
        weightData: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength),
      }),
    );
    const plainOut = plain.predict(x) as tf.Tensor;
    assert.equal(relativeDiff(plainOut, got), 0);
    tf.dispose([expected, got, plainOut]);
    model.dispose();
    plain.dispose();
  } finally {
    b.dispose();
    x.dispose();
    await rm(dir, { recursive: true, force: true });
  }
});

test('loading a missing or truncated model is a one-line user error', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'attfc-backbone-'));
  const b = createBackbone('mbf', { inputSize: 16, widthMultiplier: 0.125, embeddingSize: 8 });
  try {
    await assert.rejects(loadEmbeddingModel(path.join(dir, 'nope')), (e: unknown) => e instanceof AttfcError && /model\.json: cannot read the model/.test(e.message));
    await saveEmbeddingModel(b, dir, {});
    await truncate(path.join(dir, 'weights.bin'), 100);
    await assert.rejects(loadEmbeddingModel(dir), (e: unknown) => e instanceof AttfcError && /needs \d+ bytes but the weight files hold 100/.test(e.message));
  } finally {
    b.dispose();
    await rm(dir, { recursive: true, force: true });
  }
});
