// The on-demand synthetic source (`synth:...`): the spec, the very bytes `attfc synth` writes, the same
// training batches as the written folder, its fingerprint, `data inspect`, and a training run that writes
// the held-out pairs into its folder and verifies on them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDataset, type FaceDataset } from '../../src/data/dataset.js';
import { DataPipeline, type Batch } from '../../src/data/pipeline.js';
import { datasetFingerprint, fingerprintDifferences } from '../../src/data/fingerprint.js';
import { inspect } from '../../src/data/inspect.js';
import { parseSynthSpec, formatSynthSpec, SyntheticDataset, isSyntheticSet } from '../../src/data/synthetic/index.js';
import { AttfcError } from '../../src/errors.js';
import { setupEngine } from '../helpers/engine.js';
import { tinySynth, tinyTrainConfig } from '../helpers/tinySynth.js';
import { train } from '../../src/train/trainer.js';

// tinySynth's default set: 24 identities x 4 images at 32x32, seed 7, 10 held-out identities, 40 pairs
const SPEC = 'synth:24x4@32,seed=7,verify-identities=10,verify-pairs=40';
const folder = await tinySynth();

test('the spec: identities, images, size and the options of attfc synth; a bad one is one line naming it', () => {
  const o = parseSynthSpec('synth:2059906x3@48,seed=5,family-size=1');
  assert.deepEqual(
    [o.identities, o.imagesPerIdentity, o.size, o.seed, o.familySize, o.lowQualityShare, o.verifyIdentities],
    [2059906, 3, 48, 5, 1, 0.2, 205991],
  );
  assert.equal(parseSynthSpec('synth:10x2').size, 112, 'the size defaults to attfc synth’s');
  assert.equal(formatSynthSpec(parseSynthSpec('synth:100x3@32,seed=0,verify-pairs=40')), 'synth:100x3@32,verify-pairs=40');
  for (const [spec, why] of [
    ['synth:10', /"10" is not <identities>x<images>\[@<size>\]/],
    ['synth:10x3@32,colour=1', /unknown option "colour" \(known: seed, family-size/],
    ['synth:10x3@32,seed=', /option seed needs a number/],
    ['synth:10x3@32,seed=1,seed=2', /option seed is given twice/],
    ['synth:10x0@32', /imagesPerIdentity must be an integer in \[1, 1000000\], got 0/],
    ['synth:10x3@8', /size must be an integer in \[16, 1024\], got 8/],
  ] as const) {
    assert.throws(
      () => openDataset(spec),
      (e: Error) => e instanceof AttfcError && e.message.startsWith(`${spec}: `) && why.test(e.message) && !e.message.includes('\n'),
      spec,
    );
  }
});

test('synth:NxK@S reads exactly the bytes, labels and qualities attfc synth wrote for the same options', async () => {
  const written = openDataset(folder);
  const rendered = openDataset(SPEC);
  try {
    assert.equal(rendered.format, 'synthetic');
    assert.deepEqual([rendered.numImages, rendered.numIdentities, rendered.imageSize], [written.numImages, written.numIdentities, written.imageSize]);
    for (let id = 0; id < written.numIdentities; id++) assert.deepEqual(rendered.identityImages(id), written.identityImages(id));
    const all = Array.from({ length: written.numImages }, (_, i) => i);
    const batch = await rendered.readImages!([...all].reverse());
    for (const i of all) {
      const expected = await written.readImage(i);
      assert.equal(rendered.label(i), written.label(i));
      assert.ok((await rendered.readImage(i)).equals(expected), `image ${i}: rendered bytes differ from train.rec`);
      assert.ok(batch[written.numImages - 1 - i]!.equals(expected), `image ${i} in a batch`);
      assert.equal(rendered.quality(i), written.quality(i));
    }
    assert.match(rendered.describe(5), /^synth:24x4@32,.* image 5 \(identity 1, image 1\)$/);
  } finally {
    written.close();
    rendered.close();
  }
});

test('the data pipeline makes the same batches from synth:... as from the folder synth wrote', async () => {
  const take = async (dataset: string): Promise<Batch[]> => {
    const p = new DataPipeline({ dataset, batchSize: 8, sampleNum: 3, inputSize: 24, seed: 4, workers: 2 });
    try {
      return [await p.next(), await p.next()];
    } finally {
      await p.close();
    }
  };
  const [a, b] = [await take(folder), await take(SPEC)];
  for (let s = 0; s < a.length; s++) {
    assert.deepEqual(b[s]!.queryIndices, a[s]!.queryIndices);
    assert.deepEqual(b[s]!.keyIndices, a[s]!.keyIndices);
    assert.deepEqual(b[s]!.labels, a[s]!.labels);
    assert.ok(Buffer.from(b[s]!.images.buffer).equals(Buffer.from(a[s]!.images.buffer)), `step ${s}: query pixels differ`);
    assert.ok(Buffer.from(b[s]!.keys.buffer).equals(Buffer.from(a[s]!.keys.buffer)), `step ${s}: key pixels differ`);
    assert.deepEqual(b[s]!.keyQuality, a[s]!.keyQuality);
  }
});

test('the fingerprint follows the options that decide the training images, not the held-out set', () => {
  const print = (spec: string) => {
    const ds: FaceDataset = openDataset(spec);
    return datasetFingerprint(spec, ds);
  };
  const base = print('synth:100x3@32');
  assert.equal(fingerprintDifferences(base, print('synth:100x3@32,verify-pairs=20')), '');
  assert.equal(fingerprintDifferences(base, print('synth:100x3@32,seed=1')), 'synthetic images');
  assert.equal(fingerprintDifferences(base, print('synth:100x3@48')), 'synthetic images');
  assert.equal(fingerprintDifferences(base, print('synth:100x4@32')), '400 images, not 300; synthetic images');
});

test('data inspect renders and decodes a sample of synth:...', async () => {
  const r = await inspect('synth:2059906x3@32', { sample: 4 });
  assert.deepEqual(
    [r.format, r.identities, r.images, r.minPerIdentity, r.medianPerIdentity, r.maxPerIdentity, r.imageSize, r.decodeChecked, r.errors],
    ['synthetic', 2059906, 6179718, 3, 3, 3, { width: 32, height: 32 }, 4, []],
  );
});

test('training on synth:... writes the held-out pairs into the run folder (as synth writes them) and verifies on them', async () => {
  await setupEngine();
  const out = mkdtempSync(path.join(os.tmpdir(), 'attfc-synth-source-run-'));
  const r = await train({ ...tinyTrainConfig(SPEC, out), steps: 2, export: false }, { log: () => undefined }).done;
  const bin = path.join(out, 'synth_val.bin');
  assert.ok(readFileSync(bin).equals(readFileSync(path.join(folder, 'synth_val.bin'))), 'synth_val.bin differs from the one attfc synth wrote');
  assert.equal(r.verification.length, 1);
  assert.equal(r.verification[0]!.pairs, 40);
  assert.ok(isSyntheticSet(bin), 'results on the run’s synth_val.bin are labelled synthetic');
  assert.ok(SyntheticDataset.open(SPEC).canonicalSpec.startsWith('synth:24x4@32,seed=7'));
});
