// End-to-end training on a tiny synthetic set: exact resume, the NaN guard, the leak check, clear errors
// before training starts, and a model export that plain tfjs-layers can load.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { mkdtempSync, readFileSync, existsSync, readdirSync, cpSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setupEngine } from '../helpers/engine.js';
import { tinySynth, tinyTrainConfig } from '../helpers/tinySynth.js';
import { assertNewestCheckpointsMatch } from '../helpers/checkpoints.js';
import { train } from '../../src/train/trainer.js';
import { loadCheckpoint } from '../../src/train/checkpoint.js';
import { fileLoadHandler } from '../../src/backbones/index.js';
import { evaluateUntrained } from '../../src/eval/untrained.js';
import type { TrainConfigInput } from '../../src/train/config.js';

await setupEngine();
const data = await tinySynth();
const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'attfc-train-'));
const quiet = { log: () => undefined };
const base = (output: string): TrainConfigInput => tinyTrainConfig(data, output);

test('AttFC trains end to end: metrics, verification, checkpoint, a model plain tfjs loads, no tensor leak; it beats the untrained network', async () => {
  // the same 24 training identities, with 200 held-out pairs (20 identities) so that accuracy can move
  const verifyData = await tinySynth('tiny', 24, 4, 32, { verify: { identities: 20, pairs: 200 } });
  const bin = path.join(verifyData, 'synth_val.bin');
  const out = tmp();
  const counts: number[] = [];
  // a short run that learns: lr 0.2, s 16, m 0.1, EMA 0.9 (the defaults are for epochs, not 30 steps)
  const cfg = { ...base(out), data: verifyData, steps: 30, lr: 0.2, marginS: 16, marginM2: 0.1, emaMomentum: 0.9, verify: [bin], verifyEvery: 15 };
  const h = train(cfg, quiet);
  h.on('step', () => counts.push(tf.memory().numTensors));
  const verified: number[] = [];
  h.on('verify', (e) => verified.push(e.step));
  const r = await h.done;
  assert.equal(r.steps, 30);
  assert.ok(Number.isFinite(r.finalLoss));
  assert.deepEqual(verified, [15, 30]);
  const trained = r.verification[0];
  assert.equal(trained.name, 'synth_val');
  assert.equal(trained.pairs, 200);
  // The untrained network (same backbone, same seed) on the same pairs, with batch statistics as
  // bench:accuracy's untrained reference (its running statistics are still the initial 0 and 1).
  // Measured on this machine (seed 3): trained accuracy 0.620 vs 0.510, AUC 0.663 vs 0.537; with seed 5
  // 0.690 vs 0.585 and 0.661 vs 0.558. Asserted margin 0.05: half of the smallest measured.
  const untrained = await evaluateUntrained('mbf', { inputSize: 32, widthMultiplier: 0.25, embeddingSize: 32, seed: cfg.seed }, bin, 64);
  const numbers = `trained accuracy ${trained.accuracy} AUC ${trained.auc}; untrained ${untrained.accuracy}, ${untrained.auc}`;
  assert.ok(trained.accuracy >= untrained.accuracy + 0.05, numbers);
  assert.ok(trained.auc >= untrained.auc + 0.05, numbers);
  // a training step leaves the live tensor count unchanged
  assert.equal(new Set(counts.slice(1)).size, 1, `tensor counts per step: ${counts.join(', ')}`);
  const lines = readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const steps = lines.filter((l) => l.loss !== undefined);
  assert.deepEqual(steps.map((l) => l.step), Array.from({ length: 30 }, (_, i) => i + 1));
  for (const k of ['epoch', 'lr', 'samplesPerSec', 'dataWaitShare', 'heapBytes', 'head.positiveCos', 'head.dccFill']) assert.ok(k in steps[0], `metrics has ${k}`);
  assert.ok(lines.some((l) => l.verify === 'synth_val'));
  assert.ok(existsSync(path.join(out, 'config.json')) && existsSync(path.join(out, 'environment.json')));
  // the export loads with plain tfjs-layers and embeds
  const model = await tfl.loadLayersModel(fileLoadHandler(r.modelDir!));
  const meta = JSON.parse(readFileSync(path.join(r.modelDir!, 'model.json'), 'utf8')).userDefinedMetadata;
  assert.equal(meta.inputSize, 32);
  // the last step's verification chose the threshold that travels with the model
  assert.deepEqual(meta.verification, {
    threshold: r.verification[0].threshold.similarity,
    set: 'synth_val',
    file: bin,
    pairs: 200,
    accuracy: r.verification[0].threshold.accuracy,
    chosenBy: 'training',
    step: 30,
  });
  const e = model.predict(tf.zeros([2, 32, 32, 3])) as tf.Tensor;
  assert.deepEqual(e.shape, [2, 32]);
  tf.dispose([e]);
  model.dispose();
});

for (const head of ['attfc', 'fc', 'pfc'] as const) {
  test(`resume is exact (${head}): 2n steps straight == n + resume + n`, async () => {
    const n = 3;
    const a = tmp();
    const b = tmp();
    const cfg = (out: string) => ({ ...base(out), head, sampleRate: 0.5, steps: 2 * n, checkpointEvery: n, export: false });
    await train(cfg(a), quiet).done;
    // first half, then "crash": stop after n steps (a checkpoint is written), then resume
    const h = train(cfg(b), quiet);
    h.on('step', (m) => m.step === n && h.stop());
    const written: number[] = [];
    h.on('checkpoint', (e) => written.push(e.step));
    const first = await h.done;
    assert.equal(first.interrupted, true);
    assert.equal(first.steps, n);
    assert.deepEqual(written, [n], 'a stop right after the periodic checkpoint does not write the same step again');
    const second = await train(null, { ...quiet, resume: b }).done;
    assert.equal(second.steps, 2 * n);
    assert.equal(second.stepsThisRun, n);
    assertNewestCheckpointsMatch(a, b);
  });
}

test('checkpoints are kept to the last k and each is complete', async () => {
  const out = tmp();
  await train({ ...base(out), steps: 4, checkpointEvery: 1, keepCheckpoints: 2, export: false }, quiet).done;
  const dirs = readdirSync(path.join(out, 'checkpoints'));
  assert.deepEqual(dirs.sort(), ['ckpt-000000003', 'ckpt-000000004']);
  const c = loadCheckpoint(path.join(out, 'checkpoints', 'ckpt-000000004'));
  assert.ok(Object.keys(c.arrays).some((k) => k.startsWith('fk/')), 'the class encoder is saved');
  assert.ok(Object.keys(c.arrays).some((k) => k.startsWith('head/')), 'the DCC is saved');
  assert.ok(Object.keys(c.arrays).some((k) => k.startsWith('opt/')), 'the optimizer state is saved');
});

test('a diverging run stops with a clear message naming the last good checkpoint', async () => {
  const out = tmp();
  await assert.rejects(
    train({ ...base(out), steps: 8, lr: 1e30, clipNorm: 1e30, checkpointEvery: 1, export: false }, quiet).done,
    /loss is (NaN|Infinity|-Infinity) at step \d+ .*training diverged; the last good checkpoint is .*ckpt-\d+|\(none yet\)/,
  );
});

test('errors before training starts: too few images for a batch; more heap than exists', async () => {
  await assert.rejects(train({ ...base(tmp()), head: 'fc', batchSize: 512, steps: 1 }, quiet).done, /96 images is fewer than one batch \(batchSize 512\)/);
  await assert.rejects(
    train({ ...base(tmp()), backbone: 'r50', widthMultiplier: 1, inputSize: 112, embeddingSize: 512, batchSize: 96, head: 'fc', steps: 1 }, quiet).done,
    /needs about [\d.]+ GiB of WASM heap but at most 4\.00 GiB exists .*; the largest batch that fits is about \d+: reduce --batch-size \(now 96\)/,
  );
});

test('resume: a copied run keeps writing next to its checkpoints; operational keys may change, the recipe may not', async () => {
  const out = tmp();
  await train({ ...base(out), steps: 4, checkpointEvery: 2, export: false }, quiet).done;
  const copy = path.join(tmp(), 'moved-run');
  cpSync(out, copy, { recursive: true });
  const originalLast = statSync(path.join(out, 'checkpoints', 'ckpt-000000004', 'checkpoint.json')).mtimeMs;
  const from = path.join(copy, 'checkpoints', 'ckpt-000000002');
  await assert.rejects(train({ lr: 0.5 }, { ...quiet, resume: from }).done, /lr cannot change \(saved 0\.05, given 0\.5\)/);
  const r = await train({ logEvery: 2, keepCheckpoints: 5 }, { ...quiet, resume: from }).done;
  assert.equal(r.steps, 4);
  assert.equal(r.stepsThisRun, 2);
  assert.equal(path.resolve(r.output), path.resolve(copy));
  assert.equal(statSync(path.join(out, 'checkpoints', 'ckpt-000000004', 'checkpoint.json')).mtimeMs, originalLast, 'the original run is untouched');
  assert.ok(statSync(path.join(copy, 'checkpoints', 'ckpt-000000004', 'checkpoint.json')).mtimeMs > originalLast);
});
