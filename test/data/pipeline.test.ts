import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { Rng } from '../../src/util/rng.js';
import { AttfcError } from '../../src/errors.js';
import { InsightfaceRecWriter } from '../../src/data/recordioWriter.js';
import { DataPipeline, type Batch, type DataPipelineOptions } from '../../src/data/pipeline.js';
import { decodeToRgb } from '../../src/data/decode.js';
import { flipDecision, writeNormalised } from '../../src/data/augment.js';
import { openDataset } from '../../src/data/dataset.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'attfc-pipeline-test-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

const NATIVE = 20;
const GARBAGE = Buffer.from('this is not an image at all');

/** Random-noise JPEG (left-right asymmetric, so flips are visible). */
function noiseJpeg(rng: Rng): Promise<Buffer> {
  const raw = Buffer.alloc(NATIVE * NATIVE * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = rng.int(256);
  return sharp(raw, { raw: { width: NATIVE, height: NATIVE, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
}

/**
 * Writes an insightface .rec dataset: identity i gets sizes[i] images with quality label
 * (i + k) / 100; image keys listed in `bad` (0-based over all images) get undecodable bytes.
 */
async function makeDataset(name: string, sizes: number[], bad: number[] = []): Promise<string> {
  const dir = path.join(root, name);
  const writer = new InsightfaceRecWriter(dir, { width: NATIVE, height: NATIVE });
  const rng = new Rng(123);
  let n = 0;
  for (const [id, count] of sizes.entries()) {
    for (let k = 0; k < count; k++, n++) writer.add(id, bad.includes(n) ? GARBAGE : await noiseJpeg(rng), [(id + k) / 100]);
  }
  writer.close();
  return dir;
}

const sizes = [3, 1, 4, 2, 5, 1, 3, 5]; // 24 images
const mainSet = await makeDataset('main', sizes);

async function take(options: Partial<DataPipelineOptions> & { dataset: string }, count: number): Promise<Batch[]> {
  const p = new DataPipeline({ batchSize: 4, sampleNum: 3, inputSize: 16, seed: 1, workers: 2, ...options });
  try {
    const out: Batch[] = [];
    for (let i = 0; i < count; i++) out.push(await p.next());
    return out;
  } finally {
    await p.close();
  }
}

/** The batch recomputed image by image on the main thread. */
async function expectedImages(dataset: string, indices: Int32Array, size: number, seed: number, step: number, firstSlot: number, flip: boolean) {
  const ds = openDataset(dataset);
  const out = new Float32Array(indices.length * size * size * 3);
  for (const [i, index] of indices.entries()) {
    const rgb = await decodeToRgb(await ds.readImage(index), size, ds.describe(index));
    writeNormalised(rgb, size, out, i * size * size * 3, flip && flipDecision(seed, step, firstSlot + i));
  }
  ds.close();
  return out;
}

test('decodeToRgb: greyscale expanded, alpha dropped, resized, bad bytes name their source', async () => {
  const grey = Buffer.from(Array.from({ length: 64 }, (_, i) => i * 4));
  const greyJpeg = await sharp(grey, { raw: { width: 8, height: 8, channels: 1 } }).toColourspace('b-w').jpeg({ quality: 100 }).toBuffer();
  assert.equal((await sharp(greyJpeg).metadata()).channels, 1);
  const rgb = await decodeToRgb(greyJpeg, 8, 'grey.jpg');
  assert.equal(rgb.length, 8 * 8 * 3);
  for (let p = 0; p < 64; p++) {
    assert.ok(Math.abs(rgb[3 * p] - grey[p]) <= 2 && rgb[3 * p] === rgb[3 * p + 1] && rgb[3 * p] === rgb[3 * p + 2]);
  }
  const rgba = Buffer.alloc(8 * 8 * 4);
  for (let p = 0; p < 64; p++) rgba.set([p, 100, 200, p % 2 ? 0 : 255], p * 4);
  const png = await sharp(rgba, { raw: { width: 8, height: 8, channels: 4 } }).png().toBuffer();
  const noAlpha = await decodeToRgb(png, 8, 'alpha.png');
  assert.deepEqual([...noAlpha.subarray(0, 6)], [0, 100, 200, 1, 100, 200]);
  assert.equal((await decodeToRgb(png, 5, 'alpha.png')).length, 5 * 5 * 3);
  await assert.rejects(decodeToRgb(GARBAGE, 8, 'train.rec key 9'), (e: unknown) => e instanceof AttfcError && /^train\.rec key 9: cannot decode/.test(e.message));
  const truncated = (await noiseJpeg(new Rng(1))).subarray(0, 200);
  await assert.rejects(decodeToRgb(truncated, 8, 'cut.jpg'), AttfcError);
});

test('writeNormalised maps 0..255 to [-1, 1] and mirrors rows when flipped', () => {
  const square = new Uint8Array(2 * 2 * 3);
  square.set([0, 51, 255, 127, 128, 10], 0); // row 0: pixels A, B; row 1: black
  const out = new Float32Array(1 + square.length);
  writeNormalised(square, 2, out, 1, false);
  assert.equal(out[0], 0);
  assert.deepEqual([...out.subarray(1, 7)], [-1, -0.6, 1, 127 / 127.5 - 1, 128 / 127.5 - 1, 10 / 127.5 - 1].map(Math.fround));
  writeNormalised(square, 2, out, 1, true);
  assert.deepEqual([...out.subarray(1, 7)], [127 / 127.5 - 1, 128 / 127.5 - 1, 10 / 127.5 - 1, -1, -0.6, 1].map(Math.fround));
  assert.throws(() => writeNormalised(square, 2, out, 2, false), RangeError);
});

test('batches have the right shapes, labels, qualities and exactly the expected normalised pixels', async () => {
  const batches = await take({ dataset: mainSet }, 3);
  const ds = openDataset(mainSet);
  let flips = 0;
  for (const [b, batch] of batches.entries()) {
    assert.equal(batch.step, b);
    assert.equal(batch.epoch, b < 6 ? 0 : 1);
    assert.equal(batch.images.length, 4 * 16 * 16 * 3);
    assert.equal(batch.keys.length, 8 * 16 * 16 * 3);
    assert.equal(batch.keyIndices.length, 8);
    for (let i = 0; i < 4; i++) {
      assert.equal(batch.labels[i], ds.label(batch.queryIndices[i]));
      for (let j = 0; j < 2; j++) assert.equal(ds.label(batch.keyIndices[2 * i + j]), batch.labels[i]);
    }
    assert.deepEqual(batch.keyQuality, Float32Array.from(batch.keyIndices, (k) => ds.quality(k)!));
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of [...batch.images, ...batch.keys]) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
    assert.ok(lo >= -1 && hi <= 1 && hi - lo > 1.5, `range [${lo}, ${hi}]`);
    assert.deepEqual(batch.images, await expectedImages(mainSet, batch.queryIndices, 16, 1, b, 0, true));
    assert.deepEqual(batch.keys, await expectedImages(mainSet, batch.keyIndices, 16, 1, b, 4, true));
    for (let slot = 0; slot < 12; slot++) if (flipDecision(1, b, slot)) flips++;
  }
  assert.ok(flips > 0 && flips < 36, 'some but not all images flipped');
  ds.close();
});

test('same seed gives identical bytes with 1 and 2 workers; another seed or flip:false differs', async () => {
  const one = await take({ dataset: mainSet, workers: 1, prefetch: 1 }, 4);
  const two = await take({ dataset: mainSet, workers: 2, prefetch: 4 }, 4);
  assert.deepEqual(one, two);
  const noFlip = await take({ dataset: mainSet, workers: 2, flip: false }, 1);
  assert.deepEqual(noFlip[0].queryIndices, one[0].queryIndices);
  assert.notDeepEqual(noFlip[0].images, one[0].images);
  assert.deepEqual(noFlip[0].images, await expectedImages(mainSet, one[0].queryIndices, 16, 1, 0, 0, false));
  const other = await take({ dataset: mainSet, seed: 2 }, 1);
  assert.notDeepEqual(other[0].queryIndices, one[0].queryIndices);
});

test('state of the next batch survives a JSON round trip; prefetched batches are re-made', async () => {
  const p = new DataPipeline({ dataset: mainSet, batchSize: 5, sampleNum: 2, inputSize: NATIVE, seed: 4, workers: 2, prefetch: 3 });
  await p.next();
  await p.next();
  const state = JSON.parse(JSON.stringify(p.getState()));
  assert.equal(state.step, 2);
  const expected = [await p.next(), await p.next(), await p.next(), await p.next(), await p.next()];
  await p.close();

  const q = new DataPipeline({ dataset: mainSet, batchSize: 5, sampleNum: 2, inputSize: NATIVE, seed: 4, workers: 1 });
  q.setState(state);
  const resumed = [await q.next(), await q.next(), await q.next(), await q.next(), await q.next()];
  assert.deepEqual(resumed, expected);
  assert.deepEqual(resumed.map((b) => b.epoch), [0, 0, 0, 1, 1]); // batch 4 spans images 20..24 of 24
  const stats = q.stats();
  assert.equal(stats.images, 5 * 5 * 2);
  assert.equal(stats.badImages, 0);
  assert.ok(stats.decodeMs > 0 && stats.waitMs >= 0);
  await q.close();
});

test('K = 1 gives empty keys and no qualities', async () => {
  const [batch] = await take({ dataset: mainSet, sampleNum: 1, batchSize: 6 }, 1);
  assert.equal(batch.keys.length, 0);
  assert.equal(batch.keyIndices.length, 0);
  assert.equal(batch.keyQuality, undefined);
  assert.equal(batch.images.length, 6 * 16 * 16 * 3);
});

test('an undecodable image is replaced by another image of its identity, with a warning', async () => {
  const dir = await makeDataset('one-bad', [3, 2, 2], [1]); // image 1 of identity 0 is garbage
  const ds = openDataset(dir);
  const warnings: string[] = [];
  const p = new DataPipeline({ dataset: dir, batchSize: 7, sampleNum: 1, inputSize: 16, seed: 3, workers: 1, flip: false, onWarning: (m) => warnings.push(m) });
  const batch = await p.next(); // exactly one epoch: every image once as a query
  await p.close();
  assert.equal(p.stats().badImages, 1);
  assert.equal(warnings.length, 1);
  assert.ok(warnings[0].includes(ds.describe(1)) && warnings[0].includes(ds.describe(2)), warnings[0]);
  const used = [...batch.queryIndices].sort();
  assert.deepEqual(used, [0, 2, 2, 3, 4, 5, 6]); // image 1 replaced by the next image of identity 0
  assert.deepEqual(batch.labels, Int32Array.from(batch.queryIndices, (i) => ds.label(i)));
  assert.deepEqual(batch.images, await expectedImages(dir, batch.queryIndices, 16, 3, 0, 0, false));
  ds.close();
});

test('more bad images than maxBadShare, or an identity with no decodable image, is an AttfcError', async () => {
  const dir = await makeDataset('many-bad', Array(10).fill(5), [0, 11, 22, 33, 44]); // 10% bad
  const p = new DataPipeline({ dataset: dir, batchSize: 25, sampleNum: 1, inputSize: 16, seed: 3, workers: 2, onWarning: () => undefined });
  await p.next();
  await p.next();
  await p.next(); // 75 images drawn: below the minimum for the check
  await assert.rejects(p.next(), (e: unknown) => e instanceof AttfcError && /5 of the 50 images seen so far could not be used \(10\.00%, more than maxBadShare 1\.00%\)/.test(e.message));
  await p.close();

  const hopeless = await makeDataset('all-bad', [2, 1], [2]); // identity 1's only image is garbage
  const q = new DataPipeline({ dataset: hopeless, batchSize: 3, sampleNum: 2, inputSize: 16, seed: 0, workers: 1 });
  await assert.rejects(q.next(), (e: unknown) => e instanceof AttfcError && /no other image of identity 1/.test(e.message));
  await q.close();
});

test('a missing dataset or a bad option is an AttfcError', () => {
  assert.throws(
    () => new DataPipeline({ dataset: path.join(root, 'nope'), batchSize: 2, sampleNum: 3, inputSize: 16, seed: 0 }),
    AttfcError,
  );
  assert.throws(() => new DataPipeline({ dataset: mainSet, batchSize: 0, sampleNum: 3, inputSize: 16, seed: 0 }), /batchSize/);
  assert.throws(() => new DataPipeline({ dataset: mainSet, batchSize: 2, sampleNum: 3, inputSize: 16, seed: 0, maxBadShare: 2 }), /maxBadShare/);
});

test('close() ends the workers so that a script can exit; idle workers never hold the process', () => {
  const pipelineUrl = new URL('../../src/data/pipeline.ts', import.meta.url).href;
  const cwd = path.dirname(fileURLToPath(new URL('../../package.json', import.meta.url)));
  for (const ending of ['await p.close();', '/* no close() */']) {
    const script = `
      const { DataPipeline } = await import(${JSON.stringify(pipelineUrl)});
      const p = new DataPipeline({ dataset: ${JSON.stringify(mainSet)}, batchSize: 4, sampleNum: 3, inputSize: 16, seed: 1, workers: 2 });
      const b = await p.next();
      ${ending}
      console.log('done', b.images.length);`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd, timeout: 30_000, encoding: 'utf8' });
    assert.equal(r.signal, null, `the script (${ending}) did not exit by itself`);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /done 3072/);
  }
});

test('an undecodable image met twice (as query and as key) counts once against maxBadShare', async () => {
  // 160 images, 1 bad (0.6%); with seed 0 it is drawn twice among the first 120 images
  const dir = await makeDataset('one-bad-of-160', Array(40).fill(4), [5]);
  const warnings: string[] = [];
  const p = new DataPipeline({ dataset: dir, batchSize: 40, sampleNum: 3, inputSize: 16, seed: 0, workers: 2, onWarning: (m) => warnings.push(m) });
  try {
    for (let i = 0; i < 3; i++) await p.next();
    assert.equal(p.stats().badImages, 1);
    assert.equal(warnings.length, 1, warnings.join('\n'));
  } finally {
    await p.close();
  }
});

test('a batch that stops on bad data is where the pipeline state points, so a resume makes it again', async () => {
  const hopeless = await makeDataset('hopeless-later', [3, 3, 1, 3], [6]); // identity 2's only image is garbage
  const p = new DataPipeline({ dataset: hopeless, batchSize: 2, sampleNum: 2, inputSize: 16, seed: 0, workers: 1, onWarning: () => undefined });
  let step = 0;
  try {
    for (;;) {
      const before = p.getState();
      const ok = await p.next().then(
        () => true,
        (e: Error) => (assert.match(e.message, /no other image of identity 2/), false),
      );
      if (!ok) {
        assert.deepEqual(p.getState(), before, 'the state still points at the failed batch');
        assert.equal(p.getState().step, step);
        break;
      }
      step++;
      assert.ok(step < 20, 'identity 2 is drawn within a few epochs');
    }
  } finally {
    await p.close();
  }
});

test('insightface layout: an image whose own label is out of range, negative or NaN is reported as inspect reports it, and not trained on', async () => {
  const { RecordIOWriter } = await import('../../src/data/recordioWriter.js');
  const dir = path.join(root, 'own-labels');
  fs.mkdirSync(dir);
  const w = new RecordIOWriter(path.join(dir, 'train.rec'), path.join(dir, 'train.idx'));
  const rng = new Rng(5);
  // identity records say 0 for keys 1-4 and 1 for keys 5-8; opening spot-checks only each identity's
  // first and last image, so the middle ones carry the bad labels
  const own = [0, NaN, 99, 0, 1, -1, 1, 1];
  for (let i = 0; i < own.length; i++) w.writeRecord(i + 1, { labels: [own[i]!, 0.5], payload: await noiseJpeg(rng) });
  w.writeRecord(9, { labels: [1, 5] });
  w.writeRecord(10, { labels: [5, 9] });
  w.writeRecord(0, { labels: [9, 11] });
  w.close();
  const warnings: string[] = [];
  const p = new DataPipeline({ dataset: dir, batchSize: 8, sampleNum: 1, inputSize: 16, seed: 1, workers: 1, maxBadShare: 1, onWarning: (m) => warnings.push(m) });
  const batch = await p.next(); // one epoch
  await p.close();
  const rec = path.join(dir, 'train.rec');
  const expected = [
    `${rec} key 2: label NaN is not a non-negative integer identity`,
    `${rec} key 3: label 99 is out of range (num_classes is 2 from ${rec} key 0 (header record))`,
    `${rec} key 6: label -1 is not a non-negative integer identity`,
  ];
  for (const e of expected) assert.ok(warnings.some((w) => w.startsWith(e)), `missing "${e}" in\n${warnings.join('\n')}`);
  assert.equal(p.stats().badImages, 3);
  assert.ok(![1, 2, 5].some((i) => batch.queryIndices.includes(i)), `trained on ${[...batch.queryIndices]}`);
});
