// A real pretrained recogniser: faceplugin's insightface MobileFaceNet (npm faceplugin-face-recognition-js,
// model/fr_feature.onnx; licence not stated, so fetched at test time and never committed) on real faces
// (the AT&T database in ../shared/data/att). attfc's import embeds like onnxruntime on the original file,
// `attfc eval` gives onnxruntime's accuracy on the 3000 AT&T pairs, and `attfc train --init-from`
// fine-tunes it and exports an ONNX file onnxruntime runs with attfc's embeddings.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setupEngine } from '../helpers/engine.js';
import { attData, attDataMissing, attfcEmbed, cosineDistances, facepluginFeatureModel, ortEmbed } from '../helpers/onnx.js';
import { tinySynth } from '../helpers/tinySynth.js';
import { loadEmbedder } from '../../src/cli/commands/eval.js';
import { embedBatch } from '../../src/eval/embedder.js';
import { readVerificationBin } from '../../src/eval/binReader.js';
import { decodeRgbSquare, normalizeBatch } from '../../src/eval/images.js';
import { verificationMetrics } from '../../src/eval/verification.js';
import { importedBackbone, readOnnxBackbone, writeImportedModel } from '../../src/onnx/importer.js';
import { train } from '../../src/train/trainer.js';

await setupEngine();
const skip = attDataMissing();
const dir = mkdtempSync(path.join(os.tmpdir(), 'attfc-realmodel-'));
const SIZE = 112;

let imported: { file: string; modelDir: string } | null = null;
async function importedModel(): Promise<{ file: string; modelDir: string }> {
  if (imported) return imported;
  const file = facepluginFeatureModel();
  const modelDir = path.join(dir, 'fr_feature');
  await writeImportedModel(readOnnxBackbone(file), modelDir);
  return (imported = { file, modelDir });
}

/** NHWC mirrored along the width, as the flip test does. */
function mirror(nhwc: Float32Array, n: number, size: number): Float32Array {
  const out = new Float32Array(nhwc.length);
  for (let b = 0; b < n; b++)
    for (let y = 0; y < size; y++)
      for (let x = 0; x < size; x++)
        for (let c = 0; c < 3; c++) out[((b * size + y) * size + (size - 1 - x)) * 3 + c] = nhwc[((b * size + y) * size + x) * 3 + c];
  return out;
}

test('faceplugin MobileFaceNet is recognised, and attfc embeds real faces like onnxruntime on the original file', { skip }, async () => {
  const { file, modelDir } = await importedModel();
  const imp = readOnnxBackbone(file);
  assert.equal(imp.backbone, 'mbf');
  assert.deepEqual({ ...imp.options }, { inputSize: 112, embeddingSize: 512, widthMultiplier: 1, mbfScale: 1 });
  assert.equal(imp.description, 'MobileFaceNet blocks (1,4,6,2), scale 1');
  assert.ok(imp.unfoldedBatchNorms > 40, 'its batch norms were folded into biases');
  const faces = attData() as string;
  const names = Array.from({ length: 12 }, (_, i) => `s${1 + 3 * i}/${1 + (i % 10)}.jpg`);
  const rgb = await Promise.all(names.map((f) => decodeRgbSquare(path.join(faces, 'att_faces_112', f), SIZE, f)));
  const x = normalizeBatch(rgb, SIZE);
  const session = await ort.InferenceSession.create(file);
  const reference = await ortEmbed(session, x, names.length, SIZE, true); // the file fixes batch 1
  await session.release();
  const b = importedBackbone(imp);
  const live = attfcEmbed(b, x, names.length, SIZE);
  b.dispose();
  const folder = await loadEmbedder(modelDir); // what attfc eval/embed run
  const saved = (await embedBatch(folder.embedder, x, names.length)).orig;
  folder.dispose();
  for (const [label, got] of [['backbone', live], ['model folder', saved]] as const) {
    const d = cosineDistances(got, reference, names.length);
    assert.ok(Math.max(...d) < 1e-4, `${label}: cosine distances ${d}`);
  }
});

test('attfc eval on the AT&T pairs prints the accuracy onnxruntime embeddings give with the same protocol', { skip }, async () => {
  const { file, modelDir } = await importedModel();
  const bin = path.join(attData() as string, 'att_pairs.bin');
  const r = spawnSync(process.execPath, ['bin/attfc.js', 'eval', '--model', modelDir, '--bin', bin, '--json'], { encoding: 'utf8', timeout: 900_000 });
  assert.equal(r.status, 0, r.stderr);
  const attfc = JSON.parse(r.stdout).sets[0];

  // onnxruntime on the original file: each distinct image and its mirror image, then the 10-fold protocol
  const set = readVerificationBin(bin);
  const index = new Map<string, number>();
  const distinct: number[] = [];
  const slot = set.images.map((img, i) => {
    const key = img.toString('base64');
    if (!index.has(key)) {
      index.set(key, distinct.length);
      distinct.push(i);
    }
    return index.get(key) as number;
  });
  const session = await ort.InferenceSession.create(file);
  const rgb = await Promise.all(distinct.map((i) => decodeRgbSquare(set.images[i], SIZE, `image ${i}`)));
  const x = normalizeBatch(rgb, SIZE);
  const orig = await ortEmbed(session, x, distinct.length, SIZE, true);
  const flip = await ortEmbed(session, mirror(x, distinct.length, SIZE), distinct.length, SIZE, true);
  await session.release();
  const dim = 512;
  const expand = (e: Float32Array) => {
    const out = new Float32Array(set.images.length * dim);
    slot.forEach((s, i) => out.set(e.subarray(s * dim, (s + 1) * dim), i * dim));
    return out;
  };
  const m = verificationMetrics(expand(orig), expand(flip), set.issame, dim);
  assert.equal(attfc.pairs, 3000);
  assert.equal(attfc.accuracy.toFixed(4), m.accuracy.toFixed(4), `attfc ${attfc.accuracy} vs onnxruntime ${m.accuracy}`);
  assert.equal(attfc.std.toFixed(4), m.std.toFixed(4));
  assert.ok(m.accuracy > 0.9, `a real recogniser: ${m.accuracy}`);
});

test('attfc train --init-from fr_feature.onnx fine-tunes on a synthetic set and exports an ONNX file onnxruntime runs like attfc', { skip }, async () => {
  const { file } = await importedModel();
  const data = await tinySynth('onnx112', 12, 4, SIZE); // synthetic faces
  const out = path.join(dir, 'finetune');
  const quiet = { log: () => undefined };
  const res = await train({ data, output: out, initFrom: file, head: 'attfc', sampleNum: 2, queueSize: 8, batchSize: 8, steps: 2, lr: 0.001, workers: 1, export: 'onnx', seed: 1 }, quiet).done;
  const config = JSON.parse(readFileSync(path.join(out, 'config.json'), 'utf8'));
  assert.equal(config.initFrom, file);
  assert.deepEqual([config.backbone, config.mbfScale, config.inputSize, config.embeddingSize], ['mbf', 1, 112, 512]);
  const faces = attData() as string;
  const rgb = await Promise.all(['s5/2.jpg', 's9/7.jpg'].map((f) => decodeRgbSquare(path.join(faces, 'att_faces_112', f), SIZE, f)));
  const x = normalizeBatch(rgb, SIZE);
  const model = await loadEmbedder(res.modelDir as string);
  const tuned = (await embedBatch(model.embedder, x, 2)).orig;
  model.dispose();
  const session = await ort.InferenceSession.create(path.join(res.modelDir as string, 'model.onnx'));
  const exported = await ortEmbed(session, x, 2, SIZE);
  await session.release();
  assert.ok(Math.max(...cosineDistances(exported, tuned, 2)) < 1e-4);
  // it started from the imported weights: a few small steps keep the embeddings close to the original's
  const original = await ort.InferenceSession.create(file);
  const before = await ortEmbed(original, x, 2, SIZE, true);
  await original.release();
  const moved = cosineDistances(tuned, before, 2);
  assert.ok(Math.max(...moved) < 0.2, `cosine distance to the imported model after 2 steps: ${moved}`);
});
