// IJB-B/C: meta parsing, template pooling by hand, and the whole pipeline on a tiny generated benchmark.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { setupEngine } from '../helpers/engine.js';
import { applyAffine, arcfaceTemplate } from '../../src/face/align.js';
import type { Embedder } from '../../src/eval/embedder.js';
import {
  embedIjbImages,
  evaluateIjb,
  formatIjbTable,
  parsePairFile,
  poolTemplates,
  readIjbMeta,
  scoreTemplatePairs,
} from '../../src/eval/ijb.js';

await setupEngine(); // wasm: inference only, no conv gradients

/** Embedding = per-channel mean of the crop: solid colours give exact, predictable features. */
const meanColour: Embedder = {
  inputSize: 112,
  embed: (batch) => tf.mean(batch, [1, 2]) as tf.Tensor2D,
};

test('parsePairFile reads "tid1 tid2 label" lines with any spacing and reports bad lines', () => {
  const p = parsePairFile(Buffer.from('1 2 1\r\n3\t4  0\n\n10 11 1'), 'pairs.txt');
  assert.deepEqual([...p.t1], [1, 3, 10]);
  assert.deepEqual([...p.t2], [2, 4, 11]);
  assert.deepEqual([...p.label], [1, 0, 1]);
  assert.throws(() => parsePairFile(Buffer.from('1 2 1\n1 2\n'), 'pairs.txt'), /^AttfcError: pairs\.txt line 2: expected 3 fields 'tid1 tid2 label', got 2$/);
  assert.throws(() => parsePairFile(Buffer.from('1 2 3\n'), 'pairs.txt'), /pairs\.txt line 1: label 3, expected 0 or 1/);
  assert.throws(() => parsePairFile(Buffer.from('1 x 1\n'), 'pairs.txt'), /pairs\.txt line 1: expected 'tid1 tid2 label' integers, got '1 x 1'/);
});

test('template pooling: media mean, template sum, L2-normalise (by hand)', () => {
  // image: template, media, feature
  //   0: T7 M1 [1, 0]  \ media 1 mean [2, 0]
  //   1: T7 M1 [3, 0]  /                      \ template 7 sum [2, 2] -> [1/sqrt2, 1/sqrt2]
  //   2: T7 M2 [0, 2]    media 2      [0, 2]  /
  //   3: T3 M3 [0, 5]    template 3 -> [0, 1]
  //   4: T9 M4 [0, 0]    template 9 -> [0, 0] (a zero feature stays zero)
  const feats = Float32Array.from([1, 0, 3, 0, 0, 2, 0, 5, 0, 0]);
  const pooled = poolTemplates(feats, 2, Int32Array.from([7, 7, 7, 3, 9]), Int32Array.from([1, 1, 2, 3, 4]));
  assert.deepEqual([...pooled.ids], [3, 7, 9]); // sorted like np.unique
  const r = Math.SQRT1_2;
  [0, 1, r, r, 0, 0].forEach((v, i) => assert.ok(Math.abs(pooled.features[i] - v) < 1e-15));
  const scores = scoreTemplatePairs(pooled, Int32Array.from([7, 3, 9]), Int32Array.from([3, 3, 7]));
  assert.ok(Math.abs(scores[0] - r) < 1e-15);
  assert.equal(scores[1], 1);
  assert.equal(scores[2], 0);
  assert.throws(
    () => scoreTemplatePairs(pooled, Int32Array.from([7, 5]), Int32Array.from([3, 3]), 'p.txt'),
    /p\.txt line 2: template 5 has no images in the face\/template list/,
  );
});

const COLOURS: [number, number, number][] = [
  [255, 0, 0],
  [0, 255, 0],
  [0, 0, 255],
];

/**
 * A tiny IJB-style benchmark: 3 identities x 2 templates x 2 images of a solid colour (120x140 PNG),
 * landmarks = the template under a known similarity, every template pair listed.
 */
async function makeBenchmark(prefix: string): Promise<string> {
  const root = mkdtempSync(join(tmpdir(), 'attfc-ijb-'));
  mkdirSync(join(root, 'meta'));
  mkdirSync(join(root, 'loose_crop'));
  const t = arcfaceTemplate(112);
  const names: string[] = [];
  const lmLines: string[] = [];
  const tmLines: string[] = [];
  let img = 0;
  for (let id = 0; id < 3; id++) {
    for (let k = 0; k < 2; k++) {
      const tid = id * 2 + k + 1;
      for (let j = 0; j < 2; j++) {
        const name = `${++img}.png`;
        const [r, g, b] = COLOURS[id];
        await sharp({ create: { width: 120, height: 140, channels: 3, background: { r, g, b } } }).png().toFile(join(root, 'loose_crop', name));
        const s = 0.8 + 0.05 * j;
        const pts: string[] = [];
        for (let i = 0; i < 5; i++) pts.push(...applyAffine([s, 0, 10 + j, 0, s, 15], t[2 * i], t[2 * i + 1]).map((v) => v.toFixed(3)));
        names.push(name);
        lmLines.push(`${name} ${pts.join(' ')} 0.9`);
        tmLines.push(`${name} ${tid} ${tid * 10 + (k === 0 ? j : 0)}`); // template 1,3,5: two media; 2,4,6: one media
      }
    }
  }
  const pairs: string[] = [];
  for (let a = 1; a <= 6; a++) for (let b = a + 1; b <= 6; b++) pairs.push(`${a} ${b} ${Math.ceil(a / 2) === Math.ceil(b / 2) ? 1 : 0}`);
  writeFileSync(join(root, 'meta', `${prefix}_name_5pts_score.txt`), lmLines.join('\n') + '\n');
  writeFileSync(join(root, 'meta', `${prefix}_face_tid_mid.txt`), tmLines.join('\n') + '\n');
  writeFileSync(join(root, 'meta', `${prefix}_template_pair_label.txt`), pairs.join('\n') + '\n');
  return root;
}

test('IJB-B pipeline on a generated benchmark: features, pooling, TAR@FAR table', async () => {
  const root = await makeBenchmark('ijbb');
  const meta = readIjbMeta(root, 'IJBB');
  assert.equal(meta.names.length, 12);
  assert.equal(meta.pairLabel.length, 15);
  // feature = (e_orig + e_flip) * faceness; a solid red crop normalises to (1, -1, -1) exactly
  const before = tf.memory().numTensors;
  const { feats, dim } = await embedIjbImages(meanColour, root, meta, { batchSize: 5 });
  assert.equal(tf.memory().numTensors, before);
  assert.equal(dim, 3);
  const f = 2 * Math.fround(0.9); // float32 (1 + 1) * float32 0.9
  assert.deepEqual([...feats.subarray(0, 3)], [f, -f, -f]);
  const progress: number[] = [];
  const r = await evaluateIjb(meanColour, root, 'IJBB', { batchSize: 5, onProgress: (d) => progress.push(d) });
  assert.deepEqual(progress, [5, 10, 12]);
  assert.equal(r.images, 12);
  assert.equal(r.templates, 6);
  assert.equal(r.pairs, 15);
  assert.equal(r.auc, 1);
  assert.deepEqual(r.tarAtFar.map((x) => x.tar), [1, 1, 1, 1, 1, 1]);
  const table = formatIjbTable([r]);
  assert.match(table, /\| +Methods +\| +1e-06 +\| +1e-05 +\| +0\.0001 +\| +0\.001 +\| +0\.01 +\| +0\.1 +\|/);
  assert.match(table, /\| IJBB-IJBB +\| +100\.00 +\|/);
});

test('IJB meta problems are one-line errors naming file and line', async () => {
  const root = await makeBenchmark('ijbc');
  writeFileSync(join(root, 'meta', 'ijbc_face_tid_mid.txt'), '2.png 1 10\n');
  assert.throws(() => readIjbMeta(root, 'IJBC'), /ijbc_face_tid_mid\.txt: 1 lines but .*ijbc_name_5pts_score\.txt has 12/);
  writeFileSync(join(root, 'meta', 'ijbc_name_5pts_score.txt'), '1.png 1 2 3 4 5 6 7 8 9 x 0.9\n');
  assert.throws(() => readIjbMeta(root, 'IJBC'), /ijbc_name_5pts_score\.txt line 1: landmark 10 'x' is not a number/);
  writeFileSync(join(root, 'meta', 'ijbc_name_5pts_score.txt'), '1.png 1 2 3 4 5 6 7 8 9 10 0.9\n');
  assert.throws(() => readIjbMeta(root, 'IJBC'), /ijbc_face_tid_mid\.txt line 1: image 2\.png, but .* line 1 is 1\.png; both must list the images in the same order/);
  assert.throws(() => readIjbMeta(join(root, 'nope'), 'IJBC'), /nope\/meta\/ijbc_name_5pts_score\.txt: cannot read \(ENOENT\)/);
});
