// Synthetic face generator: determinism, identity structure (strangers > siblings > same identity),
// quality score and low-quality share, held-out verification pairs, the written dataset, caching, CLI.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import {
  describeImage,
  identityParams,
  LOW_QUALITY_THRESHOLD,
  planVerificationPairs,
  renderBatch,
  renderAtTiles,
  renderImage,
  renderPixels,
  resolveSynthOptions,
  synthesize,
  familyOf,
  type ImageKey,
} from '../../src/data/synthetic/index.js';
import { openDataset } from '../../src/data/dataset.js';
import { readVerificationBin } from '../../src/eval/binReader.js';
import { AttfcError } from '../../src/errors.js';
import { registerSynthCommand } from '../../src/cli/commands/synth.js';
import { gaussianBlur, lowResolution } from '../../src/data/synthetic/pixels.js';

const SIZE = 32;

/** 8x8 grayscale thumbnail (area average) of a rendered image, for pixel distances that ignore fine detail. */
async function thumbnail(seed: number, id: number, k: number, opts: { familySize: number }): Promise<Float64Array> {
  const { rgb } = await renderPixels(seed, id, k, { size: SIZE, lowQualityShare: 0, familySize: opts.familySize });
  const out = new Float64Array(64);
  const cell = SIZE / 8;
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      const i = (y * SIZE + x) * 3;
      out[Math.floor(y / cell) * 8 + Math.floor(x / cell)] += (0.299 * rgb[i] + 0.587 * rgb[i + 1] + 0.114 * rgb[i + 2]) / (cell * cell);
    }
  }
  return out;
}

function l2(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return Math.sqrt(s);
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'attfc-synth-'));
}

test('same seed gives identical bytes, another seed or image gives different bytes', async () => {
  const a = await renderImage(7, 3, 1, { size: SIZE });
  const b = await renderImage(7, 3, 1, { size: SIZE });
  assert.ok(a.jpeg.equals(b.jpeg));
  assert.equal(a.quality, b.quality);
  assert.equal(a.jpeg[0], 0xff);
  assert.equal(a.jpeg[1], 0xd8);
  assert.ok(!a.jpeg.equals((await renderImage(8, 3, 1, { size: SIZE })).jpeg));
  assert.ok(!a.jpeg.equals((await renderImage(7, 3, 2, { size: SIZE })).jpeg));
  assert.deepEqual(identityParams(7, 3), identityParams(7, 3));
  assert.notDeepEqual(identityParams(7, 3), identityParams(8, 3));
});

test('an image rendered in an atlas depends only on its tile: a batch gives each image the bytes it has alone in that tile', async () => {
  const keys: ImageKey[] = [];
  for (let id = 0; id < 8; id++) for (let k = 0; k < 3; k++) keys.push({ id: id * 5, k });
  const batch = await renderBatch(11, keys, { size: SIZE });
  // the 24 images in reverse order, so each shares its atlas with other neighbours than in the batch
  const order = keys.map((_, i) => keys.length - 1 - i);
  const placed = await renderAtTiles(11, order.map((i) => keys[i]!), order.map((i) => i % 16), { size: SIZE });
  for (const [i, { id, k }] of keys.entries()) {
    const alone = (await renderAtTiles(11, [{ id, k }], [i % 16], { size: SIZE }))[0]!;
    assert.ok(batch[i].jpeg.equals(alone.jpeg), `image ${id}/${k} differs between the batch and alone in tile ${i % 16}`);
    assert.ok(placed[keys.length - 1 - i]!.jpeg.equals(alone.jpeg), `image ${id}/${k} differs with other neighbours`);
    assert.equal(batch[i].quality, alone.quality);
  }
  const standalone = await renderImage(11, keys[3]!.id, keys[3]!.k, { size: SIZE });
  assert.ok(standalone.jpeg.equals((await renderAtTiles(11, [keys[3]!], [0], { size: SIZE }))[0]!.jpeg), 'renderImage is tile 0');
});

test('blur and low resolution keep flat images flat and spread detail', () => {
  const size = 32;
  for (const sigma of [0.8, 3]) {
    const flat = new Float32Array(size * size * 3).fill(100);
    gaussianBlur(flat, size, sigma);
    assert.ok(flat.every((v) => Math.abs(v - 100) < 1e-3));
    const dot = new Float32Array(size * size * 3);
    dot[(16 * size + 16) * 3] = 1000;
    gaussianBlur(dot, size, sigma);
    const total = dot.reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(total - 1000) < 0.5, `sigma ${sigma}: mass ${total}`);
    assert.ok(dot[(16 * size + 16) * 3] < 1000 * 0.6 && dot[(16 * size + 17) * 3] > 0);
    assert.equal(dot[(16 * size + 16) * 3 + 1], 0, 'channels stay separate');
  }
  const flat = new Float32Array(size * size * 3).fill(42);
  lowResolution(flat, size, 5);
  assert.ok(flat.every((v) => Math.abs(v - 42) < 1e-3));
  const stripes = Float32Array.from({ length: size * size * 3 }, (_, i) => (Math.floor(i / 3) % 2) * 200);
  lowResolution(stripes, size, 8);
  assert.ok(stripes.every((v) => Math.abs(v - 100) < 1e-3), 'alternating columns average out');
});

test('images of one identity are closer than images of different identities', async () => {
  const thumbs: Float64Array[][] = [];
  for (let id = 0; id < 8; id++) {
    const row: Float64Array[] = [];
    for (let k = 0; k < 3; k++) row.push(await thumbnail(0, id, k, { familySize: 1 }));
    thumbs.push(row);
  }
  const within: number[] = [];
  const between: number[] = [];
  for (let a = 0; a < 8; a++) {
    for (let i = 0; i < 3; i++) {
      for (let j = i + 1; j < 3; j++) within.push(l2(thumbs[a][i], thumbs[a][j]));
      for (let b = a + 1; b < 8; b++) for (let j = 0; j < 3; j++) between.push(l2(thumbs[a][i], thumbs[b][j]));
    }
  }
  assert.ok(mean(between) > 1.2 * mean(within), `between ${mean(between).toFixed(1)} vs within ${mean(within).toFixed(1)}`);
});

test('family members look more alike than strangers (parameters and pixels)', async () => {
  const familySize = 4;
  const ids = Array.from({ length: 16 }, (_, i) => i);
  const thumbs = new Map<number, Float64Array[]>();
  for (const id of ids) thumbs.set(id, [await thumbnail(1, id, 0, { familySize }), await thumbnail(1, id, 1, { familySize })]);
  const siblings: number[] = [];
  const strangers: number[] = [];
  const skinSiblings: number[] = [];
  const skinStrangers: number[] = [];
  for (const a of ids) {
    for (const b of ids) {
      if (b <= a) continue;
      const d = mean([0, 1].flatMap((i) => [0, 1].map((j) => l2(thumbs.get(a)![i], thumbs.get(b)![j]))));
      const pa = identityParams(1, a, { familySize });
      const pb = identityParams(1, b, { familySize });
      const skin = Math.hypot(...pa.skin.color.map((c, i) => c - pb.skin.color[i]));
      const sameFamily = familyOf(a, familySize) === familyOf(b, familySize);
      (sameFamily ? siblings : strangers).push(d);
      (sameFamily ? skinSiblings : skinStrangers).push(skin);
    }
  }
  assert.ok(mean(siblings) < mean(strangers), `siblings ${mean(siblings).toFixed(1)} vs strangers ${mean(strangers).toFixed(1)}`);
  assert.ok(mean(skinSiblings) < 0.6 * mean(skinStrangers));
  // siblings are still different people
  assert.notDeepEqual(identityParams(1, 0, { familySize }), identityParams(1, 1, { familySize }));
});

test('quality is in [0,1] and the low-quality share follows the option', () => {
  for (const share of [0, 0.2, 0.5, 1]) {
    let low = 0;
    const n = 2000;
    for (let i = 0; i < n; i++) {
      const d = describeImage(3, Math.floor(i / 10), i % 10, { size: SIZE, lowQualityShare: share });
      assert.ok(d.quality >= 0 && d.quality <= 1);
      // the threshold separates the two groups exactly
      assert.equal(d.quality < LOW_QUALITY_THRESHOLD, d.variation.lowQuality, `image ${i}: quality ${d.quality}`);
      if (d.variation.lowQuality) low++;
    }
    assert.ok(Math.abs(low / n - share) < 0.03, `share ${share}: measured ${low / n}`);
  }
  const clean = Array.from({ length: 200 }, (_, i) => describeImage(3, i, 0, { lowQualityShare: 0 }).quality);
  assert.ok(mean(clean) > 0.75);
});

test('verification pairs: held-out identities only, alternating same/different, mostly same-family negatives', () => {
  const opts = resolveSynthOptions({ identities: 30, imagesPerIdentity: 3, verifyIdentities: 12, verifyPairs: 200, familySize: 4 });
  const pairs = planVerificationPairs(opts);
  assert.equal(pairs.length, 200);
  let sameFamily = 0;
  pairs.forEach((p, i) => {
    assert.equal(p.same, i % 2 === 0);
    for (const key of [p.a, p.b]) {
      assert.ok(key.id >= 30 && key.id < 42, `pair ${i} uses identity ${key.id}`);
      assert.ok(key.k >= 0 && key.k < 3);
    }
    if (p.same) {
      assert.equal(p.a.id, p.b.id);
      assert.notEqual(p.a.k, p.b.k);
    } else {
      assert.notEqual(p.a.id, p.b.id);
      if (familyOf(p.a.id, 4) === familyOf(p.b.id, 4)) sameFamily++;
    }
  });
  assert.ok(sameFamily / 100 > 0.65, `hard negatives ${sameFamily}/100`);
  assert.deepEqual(planVerificationPairs(opts), pairs);
});

test('options are validated with one-line user errors', () => {
  assert.throws(() => resolveSynthOptions({ identities: 4, imagesPerIdentity: 2, verifyPairs: 41 }), (e: unknown) => e instanceof AttfcError && /verifyPairs must be even/.test(e.message));
  assert.throws(() => resolveSynthOptions({ identities: 4, imagesPerIdentity: 2, size: 8 }), (e: unknown) => e instanceof AttfcError && /size/.test(e.message));
  assert.throws(() => resolveSynthOptions({ identities: 0, imagesPerIdentity: 2 }), AttfcError);
  assert.throws(() => resolveSynthOptions({ identities: 4, imagesPerIdentity: 2, lowQualityShare: 1.5 }), AttfcError);
  assert.equal(resolveSynthOptions({ identities: 1000, imagesPerIdentity: 2 }).verifyIdentities, 100);
  assert.equal(resolveSynthOptions({ identities: 10, imagesPerIdentity: 2 }).verifyIdentities, 50);
});

test('synthesize writes a readable dataset and verification set, identical on worker threads and inline, and caches', async () => {
  const dirA = tempDir();
  const dirB = tempDir();
  try {
    const opts = { identities: 8, imagesPerIdentity: 3, size: SIZE, seed: 5, verifyIdentities: 8, verifyPairs: 20 };
    let calls = 0;
    const a = await synthesize(dirA, { ...opts, workers: 2 }, (done, total) => {
      calls++;
      assert.ok(done <= total);
    });
    assert.equal(a.cached, false);
    assert.equal(a.trainImages, 24);
    assert.equal(calls, 24 + a.verifyImages);
    const b = await synthesize(dirB, { ...opts, workers: 0 });
    assert.equal(b.workers, 0);
    assert.equal(a.workers, 2);
    for (const f of ['train.rec', 'train.idx', 'property', 'synth_val.bin']) {
      assert.ok(readFileSync(join(dirA, f)).equals(readFileSync(join(dirB, f))), `${f} differs between worker threads and inline`);
    }

    const ds = openDataset(dirA);
    try {
      assert.equal(ds.numIdentities, 8);
      assert.equal(ds.numImages, 24);
      assert.deepEqual(ds.imageSize, { width: SIZE, height: SIZE });
      for (let i = 0; i < ds.numImages; i++) {
        assert.equal(ds.label(i), Math.floor(i / 3));
        // synth renders training images in index order, 16 per atlas: image i in tile i mod 16
        const [expected] = await renderAtTiles(5, [{ id: Math.floor(i / 3), k: i % 3 }], [i % 16], { size: SIZE });
        assert.ok((await ds.readImage(i)).equals(expected.jpeg));
        assert.ok(Math.abs((ds.quality(i) ?? -1) - expected.quality) < 1e-6);
      }
    } finally {
      ds.close();
    }

    const bin = readVerificationBin(join(dirA, 'synth_val.bin'));
    assert.equal(bin.issame.length, 20);
    assert.equal(bin.issame.filter(Boolean).length, 10);
    assert.equal(bin.images.length, 40);

    const meta = JSON.parse(readFileSync(join(dirA, 'synth.json'), 'utf8'));
    assert.equal(meta.options.seed, 5);
    assert.equal(meta.generator, 'attfc-synth');

    const recTime = statSync(join(dirA, 'train.rec')).mtimeMs;
    const again = await synthesize(dirA, { ...opts, workers: 2 });
    assert.equal(again.cached, true);
    assert.equal(statSync(join(dirA, 'train.rec')).mtimeMs, recTime);
    await assert.rejects(synthesize(dirA, { ...opts, seed: 6, workers: 0 }), /holds a synthetic set made with other options \(seed 5, not 6\); pass --overwrite/);
    const changed = await synthesize(dirA, { ...opts, seed: 6, workers: 0 }, undefined, { overwrite: true });
    assert.equal(changed.cached, false);
    assert.ok(!readFileSync(join(dirA, 'train.rec')).equals(readFileSync(join(dirB, 'train.rec'))));
  } finally {
    rmSync(dirA, { recursive: true, force: true });
    rmSync(dirB, { recursive: true, force: true });
  }
});

test('attfc synth renders, reports progress on stderr and a summary with the speed', async () => {
  const dir = tempDir();
  try {
    let stdout = '';
    let stderr = '';
    const program = new Command('attfc').exitOverride();
    registerSynthCommand(program, { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t), interactive: false });
    const args = ['synth', '--identities', '4', '--images-per-identity', '2', '--size', '32', '--out', dir, '--verify-identities', '4', '--verify-pairs', '4', '--workers', '0'];
    await program.parseAsync(args, { from: 'user' });
    assert.match(stdout, /synthetic face dataset in/);
    assert.match(stdout, /images\/s/);
    assert.match(stderr, /synth: \d+\/\d+ images/);
    assert.equal(readFileSync(join(dir, 'property'), 'utf8').trim(), '4,32,32');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('attfc synth --out never replaces a data set it did not make, or a synthetic one with other options, without --overwrite', async () => {
  const dir = tempDir();
  try {
    for (const [f, text] of [['train.rec', 'REAL RECORDS'], ['train.idx', '1\t0\n'], ['property', '9,112,112\n']]) writeFileSync(join(dir, f), text);
    const run = async (...extra: string[]) => {
      const program = new Command('attfc').exitOverride();
      registerSynthCommand(program, { stdout: () => undefined, stderr: () => undefined, interactive: false });
      await program.parseAsync(['synth', '--identities', '4', '--images-per-identity', '2', '--size', '32', '--out', dir, '--verify-identities', '4', '--verify-pairs', '4', '--workers', '0', ...extra], { from: 'user' });
    };
    await assert.rejects(
      run(),
      (e: unknown) => e instanceof AttfcError && /--out .*: holds a data set attfc synth did not make \(train\.rec, train\.idx, property; no synth\.json\); pass --overwrite to replace it, or choose another --out/.test(e.message),
    );
    assert.equal(readFileSync(join(dir, 'train.rec'), 'utf8'), 'REAL RECORDS', 'the real data set is untouched');
    await run('--overwrite');
    assert.equal(readFileSync(join(dir, 'property'), 'utf8').trim(), '4,32,32');
    await assert.rejects(run('--seed', '3'), /holds a synthetic set made with other options \(seed 0, not 3\)/);
    await run(); // the same options: the cached set
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
