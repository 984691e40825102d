// One data-parallel worker: its own single-thread wasm instance computes gradients for its half of the
// batch; the two workers average gradients through shared memory and apply the same update.
import * as tf from '@tensorflow/tfjs-core';
import { parentPort, workerData } from 'node:worker_threads';
import { initEngine } from '../../src/engine/index.js';
import { makeTrainStep } from './step.js';

const { rank, name, steps, batch, inputSize } = workerData as { rank: number; name: string; steps: number; batch: number; inputSize: number };
await initEngine({ backend: 'wasm', threads: 1, log: false });
const s = makeTrainStep(name, inputSize, batch, 10000, rank);
const size = s.variables.reduce((n, v) => n + v.size, 0);
const port = parentPort!;
port.postMessage({ size });
const { ctrl, grads } = await new Promise<{ ctrl: SharedArrayBuffer; grads: SharedArrayBuffer }>((r) => port.once('message', r));
const sync = new Int32Array(ctrl);
const mine = new Float32Array(grads, rank * size * 4, size);
const theirs = new Float32Array(grads, (1 - rank) * size * 4, size);

function barrier(): void {
  const gen = Atomics.load(sync, 1);
  if (Atomics.add(sync, 0, 1) === 1) {
    Atomics.store(sync, 0, 0);
    Atomics.add(sync, 1, 1);
    Atomics.notify(sync, 1);
  } else {
    Atomics.wait(sync, 1, gen);
  }
}

function step(): number {
  const g = s.computeGrads();
  const t0 = performance.now();
  let off = 0;
  for (const t of g) {
    mine.set(t.dataSync() as Float32Array, off);
    off += t.size;
  }
  tf.dispose(g);
  barrier();
  off = 0;
  const averaged = s.variables.map((v) => {
    const a = new Float32Array(v.size);
    for (let i = 0; i < v.size; i++) a[i] = 0.5 * (mine[off + i] + theirs[off + i]);
    off += v.size;
    return tf.tensor(a, v.shape);
  });
  barrier(); // both have read the other's slot before either overwrites its own next step
  const exchange = performance.now() - t0;
  s.apply(averaged);
  tf.dispose(averaged);
  return exchange;
}

step(); // warm-up
let total = 0;
let exchange = 0;
for (let i = 0; i < steps; i++) {
  const t0 = performance.now();
  exchange += step();
  total += performance.now() - t0;
}
port.postMessage({ stepSeconds: total / steps / 1000, exchangeSeconds: exchange / steps / 1000 });
