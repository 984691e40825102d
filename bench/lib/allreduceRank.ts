// One rank of bench:distributed's allreduce measurement: attfc's gradient-bucket allreduce (the path
// training takes: the gradient copied into a persistent bucket, summed over the ranks by c10d's Gloo,
// returned as views) on float32 tensors of the given sizes, timed like the PyTorch reference
// (bench/reference/pytorch_allreduce.py): a barrier, then one allreduce, `iters` times after two
// warm-up rounds; then the same with the bucket's buffer summed in place (no copy in), which is what the
// reference does. Rank 0 prints one JSON line. Environment: RANK, WORLD_SIZE, MASTER_PORT.
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../src/engine/index.js';
import type { TorchBackend } from '../../src/engine/torch/backend.js';
import { ProcessGroup } from '../../src/engine/torch/processGroup.js';

const [sizesArg, itersArg] = process.argv.slice(2);
const sizes = sizesArg.split(',').map(Number);
const iters = Number(itersArg);
await initEngine({ backend: 'torch', threads: 1, log: false });
const rank = Number(process.env.RANK);
const pg = ProcessGroup.join(tf.backend() as TorchBackend, {
  rank,
  worldSize: Number(process.env.WORLD_SIZE),
  host: '127.0.0.1',
  port: Number(process.env.MASTER_PORT),
  hostStore: true,
  prefix: 'bench',
  timeoutMs: 120_000,
  backend: 'gloo',
  deviceHost: '127.0.0.1',
});
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const out: { floats: number; ms: number; all: number[]; inPlaceMs: number; inPlaceAll: number[] }[] = [];
const timed = (once: () => void): number[] => {
  once();
  once();
  const times: number[] = [];
  for (let i = 0; i < iters; i++) {
    pg.barrier();
    const t0 = performance.now();
    once();
    times.push(performance.now() - t0);
  }
  return times;
};
for (const n of sizes) {
  const grad = tf.fill([n], 1);
  const bucket = pg.createBucket(n);
  const all = timed(() => tf.dispose(pg.wait(pg.bucketAllReduceAsync(bucket, [grad]))));
  const inPlaceAll = timed(() => tf.dispose(pg.wait(pg.bucketAllReduceAsync(bucket, []))));
  grad.dispose();
  out.push({ floats: n, ms: median(all), all, inPlaceMs: median(inPlaceAll), inPlaceAll });
}
pg.barrier();
pg.destroy();
if (rank === 0) process.stdout.write(JSON.stringify({ sizes: out }) + '\n');
process.exit(0);
