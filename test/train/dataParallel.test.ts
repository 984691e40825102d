// Data-parallel training: a replica worker's share of a step must give exactly the gradients of the same
// split computed in one process (each half through f_q on its own, so batch norm sees the same rows),
// the broadcast must keep the replicas in step, and train() with parallel "data" must run, resume
// exactly and not leak tensors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setupEngine } from '../helpers/engine.js';
import { tinySynth, tinyTrainConfig } from '../helpers/tinySynth.js';
import { assertNewestCheckpointsMatch } from '../helpers/checkpoints.js';
import { createBackbone } from '../../src/backbones/index.js';
import { ReplicaGroup } from '../../src/train/dataParallel/replicaGroup.js';
import { splitRows, allocateShared, Control } from '../../src/train/dataParallel/shared.js';
import { train } from '../../src/train/trainer.js';
import type { TrainConfigInput } from '../../src/train/config.js';

await setupEngine();

test('splitRows: contiguous, as even as possible, covering the batch', () => {
  assert.deepEqual(splitRows(8, 2), [[0, 4], [4, 8]]);
  assert.deepEqual(splitRows(7, 3), [[0, 3], [3, 5], [5, 7]]);
});

test('a replica step gives the gradients of the same split in one process, and the broadcast keeps replicas in step', async () => {
  const opts = { inputSize: 32, widthMultiplier: 0.25, embeddingSize: 16, seed: 5 };
  const fq = createBackbone('mbf', opts);
  const ref = createBackbone('mbf', opts);
  ref.copyFrom(fq);
  const B = 6;
  const x = tf.randomNormal([B, 32, 32, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
  const xs = x.dataSync() as Float32Array;
  const w = tf.randomNormal([B, 16], 0, 1, 'float32', 2);
  const lossOf = (e: tf.Tensor2D) => tf.sum(tf.mul(tf.tanh(e), w)) as tf.Scalar;
  const group = await ReplicaGroup.start({ replicas: 2, batchSize: B, keysPerSample: 0, backbone: 'mbf', backboneOptions: opts, fq, fk: null, emaMomentum: null });
  try {
    const n0 = group.localRows;
    assert.equal(n0, 3);
    const x0 = tf.slice(x, [0, 0, 0, 0], [n0, 32, 32, 3]);
    const x1 = tf.slice(x, [n0, 0, 0, 0], [B - n0, 32, 32, 3]);
    for (let step = 0; step < 2; step++) {
      group.postStep(xs, null);
      const dp = tf.variableGrads(() => lossOf(group.joinEmbeddings(fq.apply(x0, true))), fq.trainableVariables());
      const summed = group.reduceGradients(fq.trainableVariables().map((v) => dp.grads[v.name]), []).backbone;
      const single = tf.variableGrads(() => lossOf(tf.concat([ref.apply(x0, true), ref.apply(x1, true)]) as tf.Tensor2D), ref.trainableVariables());
      assert.ok(Math.abs(dp.value.dataSync()[0] - single.value.dataSync()[0]) < 1e-4, `step ${step}: loss`);
      let worst = 0;
      ref.trainableVariables().forEach((v, i) => {
        const a = summed[i].dataSync();
        const b = single.grads[v.name].dataSync();
        for (let j = 0; j < a.length; j++) worst = Math.max(worst, Math.abs(a[j] - b[j]) / (1e-3 + Math.abs(b[j])));
      });
      assert.ok(worst < 1e-3, `step ${step}: largest relative gradient difference ${worst}`);
      // the same update on both sides; the workers get rank 0's new values by the broadcast
      tf.tidy(() => {
        fq.trainableVariables().forEach((v, i) => v.assign(tf.sub(v, tf.mul(summed[i], 0.5))));
        ref.trainableVariables().forEach((v) => v.assign(tf.sub(v, tf.mul(single.grads[v.name], 0.5))));
      });
      group.broadcastParameters();
      tf.dispose([dp.value, single.value, ...Object.values(dp.grads), ...Object.values(single.grads), ...summed]);
    }
    tf.dispose([x0, x1]);
  } finally {
    await group.close();
    tf.dispose([x, w]);
    fq.dispose();
    ref.dispose();
  }
});

test('a replica that fails reports its own message on the main thread instead of hanging it', async () => {
  const opts = { inputSize: 32, widthMultiplier: 0.25, embeddingSize: 16, seed: 5 };
  const fq = createBackbone('mbf', opts);
  try {
    await assert.rejects(
      ReplicaGroup.start({ replicas: 2, batchSize: 4, keysPerSample: 0, backbone: 'no-such-net', backboneOptions: opts, fq, fk: null, emaMomentum: null }),
      /replica 1: .*no-such-net/,
    );
  } finally {
    fq.dispose();
  }
});

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'attfc-dp-'));
const quiet = { log: () => undefined };
const data = await tinySynth();
const base = (output: string): TrainConfigInput => ({ ...tinyTrainConfig(data, output), parallel: 'data', replicas: 2, export: false });

test('train() with parallel "data": runs, records the mode, leaks no tensors, and resumes exactly', async () => {
  const n = 3;
  const a = tmp();
  const counts: number[] = [];
  const h = train({ ...base(a), steps: 2 * n, checkpointEvery: n }, quiet);
  h.on('step', () => counts.push(tf.memory().numTensors));
  const ra = await h.done;
  assert.equal(ra.steps, 2 * n);
  assert.ok(Number.isFinite(ra.finalLoss));
  assert.equal(new Set(counts.slice(1)).size, 1, `tensor counts per step: ${counts.join(', ')}`);
  const env = JSON.parse(readFileSync(path.join(a, 'environment.json'), 'utf8'));
  assert.deepEqual(env.parallel, { mode: 'data', replicas: 2 });

  const b = tmp();
  const h2 = train({ ...base(b), steps: 2 * n, checkpointEvery: n }, quiet);
  h2.on('step', (m) => m.step === n && h2.stop());
  assert.equal((await h2.done).steps, n);
  const rb = await train(null, { ...quiet, resume: b }).done;
  assert.equal(rb.steps, 2 * n);
  assertNewestCheckpointsMatch(a, b);
});

test('parallel "data" refuses a batch too small for its replicas, naming the numbers', async () => {
  await assert.rejects(train({ ...base(tmp()), batchSize: 2, queueSize: 4, steps: 1 }, quiet).done, /batchSize >= 4 \(2 rows per replica/);
});

test('the control block reports the fullest worker heap, rounded up to KiB', () => {
  const buffers = allocateShared({ replicas: 3, batchSize: 6, imageFloats: 12, keysPerSample: 0, embeddingSize: 4, trainableFloats: 8, parameterFloats: 8 });
  const main = new Control(buffers);
  assert.equal(main.largestWorkerHeapBytes(), 0);
  new Control(buffers).reportHeap(1, 300 * 1024 * 1024 + 1);
  new Control(buffers).reportHeap(2, 3.9 * 1024 ** 3);
  assert.equal(main.largestWorkerHeapBytes(), Math.ceil((3.9 * 1024 ** 3) / 1024) * 1024);
  new Control(buffers).reportHeap(2, 1024);
  assert.equal(main.largestWorkerHeapBytes(), (300 * 1024 + 1) * 1024);
});

test('parallel "data" with dropout: every replica draws its own masks, checkpointed, so resume is exact; other replicas on resume are named', async () => {
  const { loadCheckpoint } = await import('../../src/train/checkpoint.js');
  const n = 2;
  const cfg = (out: string): TrainConfigInput => ({ ...base(out), backbone: 'r18', widthMultiplier: 0.125, dropout: 0.3, head: 'fc', steps: 2 * n, checkpointEvery: n });
  const a = tmp();
  const b = tmp();
  await train(cfg(a), quiet).done;
  const h = train(cfg(b), quiet);
  h.on('step', (m) => m.step === n && h.stop());
  await h.done;
  const mid = path.join(b, 'checkpoints', 'ckpt-000000002');
  const dropout = loadCheckpoint(mid).json.dropout as { fq: number[] }[];
  assert.equal(dropout.length, 2, 'one dropout state per replica');
  assert.notDeepEqual(dropout[0].fq, dropout[1].fq, 'the replicas draw from different streams');
  await train(null, { ...quiet, resume: b }).done;
  assertNewestCheckpointsMatch(a, b);
  // the same checkpoint continued on one WASM instance: allowed, and said in one line
  const lines: string[] = [];
  await train({ output: tmp(), parallel: 'threads' }, { resume: mid, log: (l) => lines.push(l) }).done;
  assert.ok(
    lines.some((l) => /^attfc: note: batch norm now normalises batches of 8 rows on 1 replica \(the checkpoint: 4 \+ 4 rows on 2 replicas\); the continuation is not bit-identical to an uninterrupted run$/.test(l)),
    lines.join('\n'),
  );
});
