// Distributed training's parts that need no second process: the launch environment as torchrun, the
// --nproc launcher and a plain MASTER_ADDR setup give it (and its one-line refusals), DDP-style bucket
// planning, and the bucket reducer's order of work against a stand-in process group: a bucket starts
// the moment its last gradient arrives (during the backward pass), finish() starts the rest and
// returns the sums in variable order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { readLaunchEnv, defaultRankThreads } from '../../src/train/distributed/launchEnv.js';
import { GradientBuckets, planBuckets } from '../../src/train/distributed/gradientBuckets.js';
import { rankRows } from '../../src/train/distributed/processGroupExchange.js';
import { withoutNproc } from '../../src/cli/rankLauncher.js';
import type { ProcessGroup } from '../../src/engine/torch/processGroup.js';

await tf.setBackend('cpu');

test('launch environment: torchrun with its agent store, --nproc, a plain MASTER_ADDR setup, and alone', () => {
  assert.equal(readLaunchEnv({}), null);
  assert.equal(readLaunchEnv({ WORLD_SIZE: '1', RANK: '0' }), null, 'a world of one is one process');
  const torchrun = readLaunchEnv({
    RANK: '1', WORLD_SIZE: '4', LOCAL_RANK: '1', LOCAL_WORLD_SIZE: '2', MASTER_ADDR: '10.0.0.1', MASTER_PORT: '29500',
    TORCHELASTIC_USE_AGENT_STORE: 'True', TORCHELASTIC_RESTART_COUNT: '2', TORCHELASTIC_RUN_ID: 'job7',
  })!;
  assert.deepEqual(
    { ...torchrun },
    { rank: 1, worldSize: 4, localRank: 1, localWorldSize: 2, masterAddr: '10.0.0.1', masterPort: 29500, agentStore: true, restartCount: 2, runId: 'job7', storePrefix: '/worker/attempt_2/attfc', launcher: 'torchrun' },
  );
  const nproc = readLaunchEnv({ RANK: '0', WORLD_SIZE: '2', LOCAL_RANK: '0', LOCAL_WORLD_SIZE: '2', MASTER_ADDR: '127.0.0.1', MASTER_PORT: '4000', ATTFC_LAUNCHER: '1' })!;
  assert.equal(nproc.launcher, 'attfc --nproc');
  assert.equal(nproc.agentStore, false, 'rank 0 starts the store');
  const plain = readLaunchEnv({ RANK: '3', WORLD_SIZE: '4', MASTER_ADDR: 'head', MASTER_PORT: '1234' })!;
  assert.equal(plain.launcher, 'environment');
  assert.equal(plain.localWorldSize, 1);
});

test('launch environment: a partial or contradictory one is refused in one line naming the variable', () => {
  const cases: [NodeJS.ProcessEnv, RegExp][] = [
    [{ WORLD_SIZE: '2' }, /^WORLD_SIZE=2 is set but RANK is not/],
    [{ RANK: '1' }, /^RANK=1 is set but WORLD_SIZE is not/],
    [{ RANK: '2', WORLD_SIZE: '2', MASTER_ADDR: 'a', MASTER_PORT: '1' }, /^RANK=2 is not below WORLD_SIZE=2$/],
    [{ RANK: '0', WORLD_SIZE: '2', MASTER_PORT: '1' }, /^MASTER_ADDR is not set/],
    [{ RANK: '0', WORLD_SIZE: '2', MASTER_ADDR: 'a', MASTER_PORT: '70000' }, /^MASTER_PORT=70000: expected a TCP port/],
    [{ RANK: 'x', WORLD_SIZE: '2' }, /^RANK=x: expected a whole number >= 0$/],
    [{ RANK: '0', WORLD_SIZE: '2', MASTER_ADDR: 'a', MASTER_PORT: '1', LOCAL_RANK: '2', LOCAL_WORLD_SIZE: '2' }, /^LOCAL_RANK=2 is not below LOCAL_WORLD_SIZE=2$/],
  ];
  for (const [env, message] of cases) assert.throws(() => readLaunchEnv(env), { message }, JSON.stringify(env));
});

test('ranks share the cores, their rows the batch, --nproc leaves the command line', () => {
  assert.equal(defaultRankThreads(2, 2), 1);
  assert.equal(defaultRankThreads(3, 16), 5);
  assert.equal(defaultRankThreads(8, 4), 1);
  assert.deepEqual([0, 1, 2, 3].map((r) => rankRows(128, r, 4)), [[0, 32], [32, 64], [64, 96], [96, 128]]);
  assert.deepEqual(withoutNproc(['train', '--nproc', '2', '--data', 'd', '--nproc=3', '--steps', '1']), ['train', '--data', 'd', '--steps', '1']);
});

test('buckets: at most the cap (in floats), filled from the last variable back; a variable larger than the cap has its own', () => {
  const MiB = 2 ** 20;
  assert.deepEqual(planBuckets([10, 20, 30, 40], 4 * 70), [[3, 2], [1, 0]]);
  assert.deepEqual(planBuckets([10, 1_000_000, 10], 4 * 100), [[2], [1], [0]]);
  assert.deepEqual(planBuckets([1, 2, 3], 25 * MiB), [[2, 1, 0]]);
});

/** A process group of 2 ranks whose other rank holds the same gradients: sums are doubles. Records what started when. */
function standInGroup(events: string[]): ProcessGroup {
  let buckets = 0;
  const pending = new Map<number, tf.Tensor[]>();
  return {
    createBucket: () => buckets++,
    bucketAllReduceAsync: (bucket: number, tensors: tf.Tensor[]) => {
      events.push(`start ${bucket}`);
      pending.set(bucket, tensors.map((t) => tf.mul(t, 2)));
      return { id: bucket, what: `bucket ${bucket}` };
    },
    wait: (work: { id: number }) => {
      events.push(`wait ${work.id}`);
      return pending.get(work.id)!;
    },
  } as unknown as ProcessGroup;
}

test('gradient buckets start as their last gradient arrives, the rest at finish, and return sums in variable order', () => {
  const events: string[] = [];
  const sizes = [2, 3, 4, 1];
  // buckets of 5 floats: [3, 2] (1 + 4) then [1, 0] (3 + 2)
  const buckets = new GradientBuckets(standInGroup(events), sizes, 4 * 5);
  assert.equal(buckets.count, 2);
  const grads = sizes.map((n, i) => tf.fill([n], i + 1));
  // back-propagation reaches the last variables first
  buckets.tap(3, grads[3]);
  assert.deepEqual(events, []);
  buckets.tap(2, grads[2]);
  assert.deepEqual(events, ['start 0'], 'the first bucket starts while the backward pass goes on');
  buckets.tap(1, grads[1]);
  // variable 0 never reported (its gradient comes from the tape's result instead)
  const summed = buckets.finish(grads);
  assert.deepEqual(events, ['start 0', 'start 1', 'wait 0', 'wait 1']);
  summed.forEach((s, i) => assert.deepEqual(Array.from(s.dataSync()), Array(sizes[i]).fill(2 * (i + 1))));
  assert.throws(() => {
    buckets.tap(3, grads[3]);
    buckets.tap(3, grads[3]);
  }, /arrived twice in one step/);
  buckets.reset();
  tf.dispose([...grads, ...summed]);
});
