// `attfc eval` and `attfc embed` through commander, with a tiny model saved like a trained one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { Command } from 'commander';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { setupEngine } from '../helpers/engine.js';
import { fileSaveHandler } from '../../src/backbones/index.js';
import { registerEvalCommands } from '../../src/cli/commands/eval.js';
import { writeVerificationBin } from '../../src/eval/binWriter.js';
import { encodeNpyFloat32 } from '../../src/eval/npy.js';
import { renderRocSvg } from '../../src/eval/plot.js';
import { loadEmbedder } from '../../src/embed.js';
import { makePairs, tinyModel, TINY_SIZE } from './fixtures.js';

await setupEngine(); // wasm: inference only

const dir = mkdtempSync(join(tmpdir(), 'attfc-evalcli-'));
const modelDir = join(dir, 'model');
await tinyModel().save(fileSaveHandler(modelDir, { inputSize: TINY_SIZE, backbone: 'tiny', step: 1234 }));
const pairs = await makePairs(12);
const binA = join(dir, 'lfw.bin');
const binB = join(dir, 'cfp_fp.bin');
writeVerificationBin(binA, pairs);
writeVerificationBin(binB, pairs.slice(0, 10));

async function run(...args: string[]): Promise<{ out: string; err: string }> {
  let out = '';
  let err = '';
  const program = new Command('attfc').exitOverride();
  registerEvalCommands(program, { stdout: (t) => (out += t), stderr: { write: (t: string) => (err += t), isTTY: false } });
  await program.parseAsync(args, { from: 'user' });
  return { out, err };
}

test('eval --bin prints one insightface line per set, then a table', async () => {
  const { out, err } = await run('eval', '--model', modelDir, '--bin', binA, binB, '--batch-size', '8');
  const lines = out.trimEnd().split('\n');
  assert.match(lines[0], /^\[lfw\]\[1234\]Accuracy-Flip: [01]\.\d{5}\+-\d\.\d{5}$/);
  assert.match(lines[1], /^\[cfp_fp\]\[1234\]Accuracy-Flip: [01]\.\d{5}\+-\d\.\d{5}$/);
  assert.match(lines[3], /\| +Set +\| +Pairs +\| +Accuracy +\| +Std +\| +XNorm +\| +VAL@FAR=1e-3 \(10-fold\) +\| +TAR@FAR<=1e-3 \(all pairs\) +\| +AUC +\|/);
  // 12 pairs in 10 folds: folds of one or two pairs lack same or different pairs, so no VAL
  assert.match(out, /\| +lfw +\| +12 +\| [01]\.\d{5} +\| \d\.\d{5} +\| +\d+\.\d{4} +\| +n\/a +\| +[01]\.\d{5} +\|/);
  assert.match(out, /\| +lfw +\| +12 +\|/);
  assert.match(out, /\| +cfp_fp +\| +10 +\|/);
  // progress went to stderr as plain lines (not a TTY)
  assert.match(err, /^lfw: 24\/24 images \(100%\), [\d.]+ images\/s, done in \d+s$/m);
});

test('eval --json prints only JSON; --name and --step label the sets; --plot writes a PNG', async () => {
  const plot = join(dir, 'roc.png');
  const { out, err } = await run('eval', '--model', modelDir, '--bin', binA, binB, '--name', 'A', 'B', '--json', '--plot', plot);
  const parsed = JSON.parse(out);
  assert.deepEqual(Object.keys(parsed), ['sets']);
  assert.deepEqual(parsed.sets.map((s: { name: string }) => s.name), ['A', 'B']);
  assert.deepEqual(Object.keys(parsed.sets[0]), ['name', 'pairs', 'accuracy', 'std', 'xnorm', 'valAtFar1e3', 'tarAtFar1e3AllPairs', 'auc', 'threshold', 'thresholdAccuracy']);
  assert.deepEqual(Object.keys(parsed.sets[0].valAtFar1e3), ['val', 'std', 'far']);
  assert.equal(parsed.sets[1].pairs, 10);
  assert.match(err, /wrote .*roc\.png/);
  const meta = await sharp(plot).metadata();
  assert.equal(meta.format, 'png');
  assert.equal(meta.width, 1640);
  const step = await run('eval', '--model', modelDir, '--bin', binB, '--step', 'final');
  assert.match(step.out, /^\[cfp_fp\]\[final\]Accuracy-Flip: /);
});

test("eval records the first set's threshold in the model's metadata (unless --no-record-threshold)", async () => {
  const copy = join(dir, 'model-threshold');
  await tinyModel().save(fileSaveHandler(copy, { inputSize: TINY_SIZE, backbone: 'tiny', steps: 77 }));
  const metadata = () => JSON.parse(readFileSync(join(copy, 'model.json'), 'utf8')).userDefinedMetadata;
  await run('eval', '--model', copy, '--bin', binB, '--no-record-threshold');
  assert.equal(metadata().verification, undefined);
  const { out } = await run('eval', '--model', copy, '--bin', binA, binB);
  const v = metadata().verification;
  assert.deepEqual(Object.keys(v).sort(), ['accuracy', 'chosenBy', 'file', 'pairs', 'set', 'step', 'threshold']);
  assert.equal(v.step, 77);
  assert.equal(v.set, 'lfw');
  assert.equal(v.file, binA);
  assert.equal(v.pairs, 12);
  assert.equal(v.chosenBy, 'attfc eval');
  assert.equal(metadata().backbone, 'tiny', 'the other metadata stays');
  assert.ok(out.includes(`threshold: same face if cosine similarity >= ${v.threshold.toFixed(5)} (chosen on lfw, 12 pairs, accuracy ${v.accuracy.toFixed(5)} on them); recorded in ${copy}/model.json`));
  // the recorded cut reproduces its accuracy on the set's plain embeddings
  const embedder = await loadEmbedder(copy);
  const sims = await Promise.all(pairs.map(async (p) => (await embedder.verify(p.a, p.b)).similarity));
  const correct = pairs.filter((p, i) => sims[i] >= v.threshold === p.same).length;
  assert.equal(correct / pairs.length, v.accuracy);
  embedder.dispose();
});

test('eval --plot: the title comes from the metadata a trained model carries; the FAR axis starts where the negatives resolve', async () => {
  // the metadata exportEmbeddingModel writes at the end of training
  const trained = join(dir, 'trained-model');
  await tinyModel().save(fileSaveHandler(trained, { inputSize: TINY_SIZE, backbone: 'mbf', widthMultiplier: 0.5, head: 'attfc', steps: 200, trainedOn: '/data/synth' }));
  const synthDir = join(dir, 'synth');
  mkdirSync(synthDir, { recursive: true });
  const bin = join(synthDir, 'synth_val.bin');
  writeVerificationBin(bin, pairs);
  writeFileSync(join(synthDir, 'synth.json'), '{}'); // what `attfc synth` leaves next to its .bin
  const plot = join(dir, 'trained-roc.svg');
  const { out } = await run('eval', '--model', trained, '--bin', bin, '--plot', plot);
  assert.match(out, /^\[synth_val\]\[200\]Accuracy-Flip: /);
  const svg = readFileSync(plot, 'utf8');
  assert.match(svg, />ROC \u2014 mbf x0\.5, attfc head, 200 steps \(SYNTHETIC data\)</);
  // 6 negative pairs resolve FAR 1/6 at best: the axis starts at 0.1 (one decade at least), not at 1e-6
  assert.equal(pairs.filter((p) => !p.same).length, 6);
  assert.match(svg, />10<tspan dy="-6" font-size="9">\u22121<\/tspan>/);
  assert.doesNotMatch(svg, /\u22122<\/tspan>/);
});

test('eval argument errors are one-line user errors', async () => {
  await assert.rejects(run('eval', '--model', modelDir), /^AttfcError: eval: give --bin <files\.\.\.> and\/or --ijb <root>$/);
  await assert.rejects(run('eval', '--model', modelDir, '--bin', binA, binB, '--name', 'x'), /--name has 1 names but --bin has 2 files/);
  await assert.rejects(run('eval', '--model', modelDir, '--bin', binA, '--plot', join(dir, 'roc.pdf')), /--plot .*roc\.pdf: expected a \.svg or \.png file name/);
  await assert.rejects(run('eval', '--model', join(dir, 'missing'), '--bin', binA));
  // outputs are checked before any work: a bad --plot is reported even though the model is missing
  await assert.rejects(run('eval', '--model', join(dir, 'missing'), '--bin', binA, '--plot', join(dir, 'x.jpg')), /^AttfcError: --plot .*x\.jpg: expected a \.svg or \.png file name$/);
});

test('embed writes L2-normalised embeddings as JSON or a real .npy', async () => {
  const files = [0, 1, 2].map((i) => {
    const f = join(dir, `img${i}.png`);
    writeFileSync(f, pairs[i].a);
    return f;
  });
  const { out } = await run('embed', '--model', modelDir, ...files);
  const obj = JSON.parse(out) as Record<string, number[]>;
  assert.deepEqual(Object.keys(obj), files);
  for (const v of Object.values(obj)) {
    assert.equal(v.length, 8);
    assert.ok(Math.abs(Math.hypot(...v) - 1) < 1e-6);
  }
  const npy = join(dir, 'emb.npy');
  await run('embed', '--model', modelDir, '--out', npy, ...files);
  const buf = readFileSync(npy);
  assert.deepEqual([...buf.subarray(0, 8)], [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]); // \x93NUMPY v1.0
  const hlen = buf.readUInt16LE(8);
  assert.equal((10 + hlen) % 64, 0);
  assert.equal(buf.toString('latin1', 10, 10 + hlen).trimEnd(), "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 8), }");
  const data = new Float32Array(buf.buffer.slice(buf.byteOffset + 10 + hlen, buf.byteOffset + buf.length));
  assert.deepEqual(Array.from(data.subarray(0, 8)), obj[files[0]].map((v) => Math.fround(v)));
  const json = join(dir, 'emb.json');
  await run('embed', '--model', modelDir, '--out', json, ...files);
  assert.deepEqual(JSON.parse(readFileSync(json, 'utf8')), obj);
  await assert.rejects(run('embed', '--model', modelDir, '--out', join(dir, 'e.txt'), files[0]), /expected a \.json or \.npy file name/);
  await assert.rejects(run('embed', '--model', modelDir, files[0], files[0]), /is given twice/);
  assert.equal(existsSync(join(dir, 'e.txt')), false);
});

test('npy header for a 1-D array and the SVG figure content', () => {
  const b = encodeNpyFloat32(Float32Array.from([1, 2]), [2]);
  assert.ok(b.toString('latin1').includes("'shape': (2,), }"));
  const svg = renderRocSvg(
    [
      { name: 'lfw', detail: 'acc 99.50%', fpr: [0, 0, 0.5, 1], tpr: [0, 0.9, 1, 1] },
      { name: 'a<b', fpr: [0, 1], tpr: [0, 1] },
    ],
    { title: 'ROC & more' },
  );
  assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.match(svg, /ROC &amp; more/);
  assert.match(svg, />lfw</);
  assert.match(svg, />a&lt;b</);
  assert.equal((svg.match(/<polyline /g) ?? []).length, 2);
  assert.match(svg, /False accept rate/);
  assert.match(svg, /True accept rate/);
});

test('embed and eval refuse a model with non-finite weights, and a model whose outputs are not finite', async () => {
  const img = join(dir, 'finite-check.png');
  writeFileSync(img, pairs[0].a);
  // weights.bin with a NaN: what a diverged run would have exported
  const nanDir = join(dir, 'nan-model');
  await tinyModel().save(fileSaveHandler(nanDir, { inputSize: TINY_SIZE }));
  const weights = readFileSync(join(nanDir, 'weights.bin'));
  weights.writeFloatLE(NaN, 8);
  writeFileSync(join(nanDir, 'weights.bin'), weights);
  await assert.rejects(run('embed', '--model', nanDir, img), /weights\.bin: .* holds a non-finite value \(NaN\); the model diverged in training/);
  await assert.rejects(run('eval', '--model', nanDir, '--bin', binA), /holds a non-finite value \(NaN\)/);
  // finite weights, overflowing outputs
  const hugeDir = join(dir, 'huge-model');
  const huge = tinyModel();
  huge.layers[0].setWeights([tf.fill([3, 3, 3, 4], 3e38), tf.zeros([4])]);
  await huge.save(fileSaveHandler(hugeDir, { inputSize: TINY_SIZE }));
  const npy = join(dir, 'huge.npy');
  await assert.rejects(run('embed', '--model', hugeDir, '--out', npy, img), /non-finite embedding .*finite-check\.png/);
  assert.equal(existsSync(npy), false, 'no all-NaN output file');
  await assert.rejects(run('eval', '--model', hugeDir, '--bin', binA), /non-finite embedding/);
});
