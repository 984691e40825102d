// evaluateBin end to end with a tiny tfjs-layers model: batching, flip, progress, no tensor leaks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setupEngine } from '../helpers/engine.js';
import { readVerificationBin } from '../../src/eval/binReader.js';
import { writeVerificationBin } from '../../src/eval/binWriter.js';
import { embedBatchWithFlip, embedderFromLayersModel } from '../../src/eval/embedder.js';
import { evaluateBin, formatVerificationLine, formatXNormLine } from '../../src/eval/evaluateBin.js';
import { decodeRgbSquare, normalizeBatch } from '../../src/eval/images.js';
import { verificationMetrics } from '../../src/eval/verification.js';
import { embedImageFiles } from '../../src/eval/embedFiles.js';
import { makePairs, tinyModel, TINY_SIZE } from './fixtures.js';

await setupEngine(); // wasm: inference only, no conv gradients

const dir = mkdtempSync(join(tmpdir(), 'attfc-evalbin-'));
const binPath = join(dir, 'tiny_val.bin');
const pairs = await makePairs(20);
writeVerificationBin(binPath, pairs);
const model = tinyModel();
const embedder = embedderFromLayersModel(model, TINY_SIZE);

test('evaluateBin follows the protocol batch by batch and reports progress', async () => {
  const before = tf.memory().numTensors;
  const progress: [number, number][] = [];
  const r = await evaluateBin(embedder, binPath, { batchSize: 7, onProgress: (d, t) => progress.push([d, t]) });
  assert.equal(tf.memory().numTensors, before, 'no tensor leak');
  assert.deepEqual(progress.map((p) => p[0]), [7, 14, 21, 28, 35, 40]);
  assert.ok(progress.every((p) => p[1] === 40));
  assert.equal(r.name, 'tiny_val');
  assert.equal(r.pairs, 20);
  assert.ok(r.accuracy >= 0 && r.accuracy <= 1);
  assert.equal(r.foldAccuracies.length, 10);
  assert.ok(r.xnorm > 0);
  assert.equal(r.roc.fpr[0], 0);
  assert.equal(r.roc.tpr.at(-1), 1);
  assert.match(formatVerificationLine(r.name, 100, r), /^\[tiny_val\]\[100\]Accuracy-Flip: [01]\.\d{5}\+-\d\.\d{5}$/);
  assert.match(formatXNormLine(r.name, 100, r), /^\[tiny_val\]\[100\]XNorm: \d+\.\d{6}$/);

  // the same numbers from one big batch through the pure protocol functions
  const set = readVerificationBin(binPath);
  const rgb = await Promise.all(set.images.map((b, i) => decodeRgbSquare(b, TINY_SIZE, `image ${i}`)));
  const e = await embedBatchWithFlip(embedder, normalizeBatch(rgb, TINY_SIZE), rgb.length);
  const m = verificationMetrics(e.orig, e.flip as Float32Array, set.issame, e.dim);
  assert.equal(r.accuracy, m.accuracy);
  assert.equal(r.std, m.std);
  assert.ok(Math.abs(r.xnorm - m.xnorm) < 1e-5);
  assert.ok(Math.abs(r.tarAtFar1e3AllPairs - m.tarAtFar1e3AllPairs) < 1e-12);
  assert.deepEqual(r.valAtFar1e3, { val: m.valAtFar1e3.val, std: m.valAtFar1e3.std, far: m.valAtFar1e3.far });
});

test('a set that reuses images embeds each distinct image once, with the numbers of embedding every entry', async () => {
  // every image appears twice: pair i's second image is pair i+1's first
  const reused = pairs.map((p, i) => ({ ...p, b: pairs[(i + 1) % pairs.length].a }));
  const path = join(dir, 'reused.bin');
  writeVerificationBin(path, reused);
  let rows = 0;
  const counting = { inputSize: TINY_SIZE, embed: (x: tf.Tensor4D) => ((rows += x.shape[0]), embedder.embed(x)) };
  const progress: [number, number][] = [];
  const r = await evaluateBin(counting, path, { batchSize: 8, onProgress: (d, t) => progress.push([d, t]) });
  assert.equal(rows, 2 * pairs.length, 'each of the 20 distinct images once, plus its mirror image');
  assert.deepEqual(progress.at(-1), [20, 20]);
  const set = readVerificationBin(path);
  assert.equal(set.images.length, 40);
  const rgb = await Promise.all(set.images.map((b, i) => decodeRgbSquare(b, TINY_SIZE, `image ${i}`)));
  const e = await embedBatchWithFlip(embedder, normalizeBatch(rgb, TINY_SIZE), rgb.length);
  const m = verificationMetrics(e.orig, e.flip as Float32Array, set.issame, e.dim);
  assert.equal(r.accuracy, m.accuracy);
  assert.equal(r.std, m.std);
  assert.ok(Math.abs(r.xnorm - m.xnorm) < 1e-5);
});

test('the flip embedding is the embedding of the mirrored image', async () => {
  const set = readVerificationBin(binPath);
  const rgb = await decodeRgbSquare(set.images[0], TINY_SIZE, 'image 0');
  const mirrored = Buffer.alloc(rgb.length);
  for (let y = 0; y < TINY_SIZE; y++)
    for (let x = 0; x < TINY_SIZE; x++)
      rgb.copy(mirrored, (y * TINY_SIZE + (TINY_SIZE - 1 - x)) * 3, (y * TINY_SIZE + x) * 3, (y * TINY_SIZE + x) * 3 + 3);
  const e = await embedBatchWithFlip(embedder, normalizeBatch([rgb], TINY_SIZE), 1);
  const m = await embedBatchWithFlip(embedder, normalizeBatch([mirrored], TINY_SIZE), 1);
  (e.flip as Float32Array).forEach((v, i) => assert.ok(Math.abs(v - m.orig[i]) < 1e-5));
  assert.ok(e.orig.some((v, i) => Math.abs(v - (e.flip as Float32Array)[i]) > 1e-4), 'the tiny model is not mirror-symmetric');
});

test('images are decoded to RGB at the model size (resized when needed)', async () => {
  const set = readVerificationBin(binPath);
  const small = await decodeRgbSquare(set.images[0], TINY_SIZE, 'a'); // 16x16 as stored
  const resized = await decodeRgbSquare(set.images[1], TINY_SIZE, 'b'); // stored 20x24
  assert.equal(small.length, TINY_SIZE * TINY_SIZE * 3);
  assert.equal(resized.length, TINY_SIZE * TINY_SIZE * 3);
  // (x/255 - 0.5)/0.5 maps 0 -> -1, 255 -> 1
  assert.deepEqual([...normalizeBatch([Uint8Array.from([0, 255, 51])], 1)], [-1, 1, Math.fround(-0.6)]);
});

test('a corrupt image or too few pairs are clear user errors', async () => {
  const broken = pairs.slice(0, 10).map((p) => ({ ...p }));
  broken[1] = { ...broken[1], b: Buffer.from('not an image') };
  const path = join(dir, 'broken.bin');
  writeVerificationBin(path, broken);
  const before = tf.memory().numTensors;
  await assert.rejects(evaluateBin(embedder, path), /^AttfcError: broken image 3: cannot decode image \(/);
  assert.equal(tf.memory().numTensors, before);
  const few = join(dir, 'few.bin');
  writeVerificationBin(few, pairs.slice(0, 4));
  await assert.rejects(evaluateBin(embedder, few, { name: 'few' }), /10-fold verification needs at least 10 pairs, got 4/);
});

test('embedImageFiles: one plain embedding per file, L2-normalised', async () => {
  const { writeFileSync } = await import('node:fs');
  const files = [0, 1, 2].map((i) => {
    const f = join(dir, `face${i}.png`);
    writeFileSync(f, pairs[i].a);
    return f;
  });
  const r = await embedImageFiles(embedder, files, { batchSize: 2 });
  assert.equal(r.dim, 8);
  assert.equal(r.embeddings.length, 24);
  for (let i = 0; i < 3; i++) {
    const row = r.embeddings.subarray(i * 8, i * 8 + 8);
    assert.ok(Math.abs(Math.hypot(...row) - 1) < 1e-6);
  }
  const rgb = await decodeRgbSquare(pairs[2].a, TINY_SIZE, 'x');
  const raw = (await embedBatchWithFlip(embedder, normalizeBatch([rgb], TINY_SIZE), 1)).orig;
  const n = Math.hypot(...raw);
  raw.forEach((v, j) => assert.ok(Math.abs(v / n - r.embeddings[16 + j]) < 1e-6));
});
