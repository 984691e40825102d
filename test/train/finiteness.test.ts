// Divergence that the loss does not show yet: batch-norm running statistics can turn Inf/NaN while the
// loss stays finite for a few steps. A checkpoint or an export with a non-finite value is never written,
// a resume refuses one, and "the last good checkpoint" is always one that holds only finite values.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { existsSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setupEngine } from '../helpers/engine.js';
import { createBackbone, type Backbone } from '../../src/backbones/index.js';
import { CheckpointPolicy, type CheckpointedState } from '../../src/train/checkpointPolicy.js';
import { listCheckpoints, loadCheckpoint, saveCheckpoint } from '../../src/train/checkpoint.js';
import { parseTrainConfig } from '../../src/train/config.js';
import { exportEmbeddingModel } from '../../src/train/exportModel.js';
import { Sgd } from '../../src/train/sgd.js';
import type { Head } from '../../src/heads/types.js';
import type { DataPipeline } from '../../src/data/pipeline.js';
import { AttfcError } from '../../src/errors.js';

await setupEngine();
const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'attfc-finite-'));
const config = parseTrainConfig({ data: 'unused', backbone: 'mbf', widthMultiplier: 0.25, inputSize: 32, embeddingSize: 16, head: 'fc' });

function setup(): { fq: Backbone; policy: CheckpointPolicy; root: string; dispose: () => void } {
  const fq = createBackbone('mbf', { inputSize: 32, widthMultiplier: 0.25, embeddingSize: 16, seed: 1 });
  const sgd = new Sgd(fq.trainableVariables(), { momentum: 0.9, weightDecay: 0 });
  const head = { getState: () => ({ arrays: { w: new Float32Array([1, 2]) }, json: {} }), setState: () => undefined } as unknown as Head;
  const pipeline = { getState: () => ({ sampler: {}, step: 0 }), setState: () => undefined } as unknown as DataPipeline;
  const state: CheckpointedState = { config, fq, fk: null, sgd, head, pipeline, data: { source: 'unused', images: 1, identities: 1, hashes: {} }, batchNormRows: [8] };
  const root = path.join(tmp(), 'checkpoints');
  return { fq, policy: new CheckpointPolicy(root, state, () => undefined), root, dispose: () => (sgd.dispose(), fq.dispose()) };
}

/** Sets one value of f_q's first batch-norm running variance to `v`; returns that variable's name. */
function poison(fq: Backbone, v: number): string {
  const bn = fq.variables().find((x) => x.name.endsWith('running_var'))!;
  const values = bn.variable.dataSync().slice();
  values[0] = v;
  bn.variable.assign(tf.tensor(values, bn.variable.shape));
  return bn.name;
}

test('a checkpoint holding a non-finite value is not written; the last good checkpoint stays the finite one', () => {
  const { fq, policy, root, dispose } = setup();
  try {
    const good = policy.write(1);
    const name = poison(fq, NaN);
    assert.throws(
      () => policy.write(2),
      (e: unknown) =>
        e instanceof AttfcError &&
        e.message.includes(`fq/${name} holds a non-finite value (NaN) at step 2`) &&
        e.message.includes(`the last good checkpoint is ${good}`) &&
        !e.message.includes('\n'),
    );
    assert.deepEqual(listCheckpoints(root), [good]);
    assert.equal(policy.last, good);
  } finally {
    dispose();
  }
});

test('a resume refuses a checkpoint holding a non-finite value', () => {
  const { policy, root, dispose } = setup();
  try {
    const c = loadCheckpoint(policy.write(1));
    const key = Object.keys(c.arrays).find((k) => k.endsWith('running_var'))!;
    (c.arrays[key] as Float32Array)[3] = Infinity;
    const bad = saveCheckpoint(path.join(path.dirname(root), 'elsewhere'), { ...c, step: 7 }, 1);
    assert.throws(() => policy.restore(loadCheckpoint(bad), bad), (e: unknown) => e instanceof AttfcError && e.message.includes(`${bad}: ${key} holds a non-finite value (Infinity)`));
  } finally {
    dispose();
  }
});

test('an export of weights holding a non-finite value is refused and writes no model', async () => {
  const { fq, dispose } = setup();
  const run = tmp();
  try {
    poison(fq, Infinity);
    await assert.rejects(exportEmbeddingModel(fq, config, 3, run), (e: unknown) => e instanceof AttfcError && /non-finite value \(Infinity\)/.test(e.message));
    assert.equal(existsSync(path.join(run, 'model')), false);
  } finally {
    dispose();
  }
});
