// Re-estimating batch norms that an ONNX exporter folded into biases: the inference function stays,
// and the training-mode forward (batch statistics) becomes the same function instead of a different one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { setupEngine } from '../helpers/engine.js';
import { cosineDistances, randomImages, randomiseNorms } from '../helpers/onnx.js';
import { createBackbone, type Backbone } from '../../src/backbones/index.js';
import { recalibrateUnfoldedNorms } from '../../src/backbones/unfoldedNorms.js';
import { backboneToOnnx } from '../../src/onnx/writer.js';
import { decodeModel, onnx } from '../../src/onnx/proto.js';
import { importedBackbone, readOnnxBackbone } from '../../src/onnx/importer.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

await setupEngine({ backend: 'cpu' });

const SIZE = 32;
const embed = (b: Backbone, x: Float32Array, n: number, training: boolean) =>
  tf.tidy(() => b.apply(tf.tensor4d(x, [n, SIZE, SIZE, 3]), training).dataSync() as Float32Array).slice();

/** An mbf (scale 1) as a PyTorch export would hold it (norms folded, no attfc metadata), imported back. */
function importedFolded(): Backbone {
  const src = createBackbone('mbf', { inputSize: SIZE, mbfScale: 1, embeddingSize: 16, seed: 3 });
  randomiseNorms(src, 4);
  // the embedding BN1d as a folded one comes back (exporters fold it into the dense bias)
  tf.tidy(() => {
    for (const v of src.variables().filter((v) => v.name.startsWith('features.layers.3.')))
      v.variable.assign(tf.fill(v.variable.shape, v.name.endsWith('.weight') ? 1 : v.name.endsWith('running_var') ? 1 - 1e-5 : 0));
  });
  const m = decodeModel(backboneToOnnx(src, { foldBatchNorm: true }), 'test');
  src.dispose();
  m.metadataProps = [];
  const f = path.join(mkdtempSync(path.join(os.tmpdir(), 'attfc-unfolded-')), 'm.onnx');
  writeFileSync(f, onnx.ModelProto.encode(m).finish());
  return importedBackbone(readOnnxBackbone(f));
}

test('recalibrateUnfoldedNorms keeps the inference embeddings and makes training mode compute them too', () => {
  const n = 12;
  const x = randomImages(n, SIZE, 7);
  const b = importedFolded();
  const plain = importedFolded();
  try {
    const before = embed(b, x, n, false);
    // unfolded as imported: training mode (batch statistics) is another function
    const trainPlain = embed(plain, x, n, true);
    assert.ok(Math.max(...cosineDistances(trainPlain, before, n)) > 0.05, 'training mode differs before re-estimation');
    const count = recalibrateUnfoldedNorms(b, x, n, 5); // chunks of 5, 5 and 2 images
    assert.ok(count > 30, `${count} norms re-estimated`);
    const after = embed(b, x, n, false);
    const scale = Math.max(...before.map(Math.abs));
    assert.ok(before.every((v, i) => Math.abs(v - after[i]) < 1e-4 * scale), 'inference unchanged');
    const trained = embed(b, x, n, true);
    assert.ok(Math.max(...cosineDistances(trained, before, n)) < 1e-4, 'training mode on the calibration images = inference');
    // norms that were not unfolded (and a second call) are left alone
    assert.equal(recalibrateUnfoldedNorms(b, x, n), 0);
  } finally {
    b.dispose();
    plain.dispose();
  }
});
