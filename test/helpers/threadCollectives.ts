// HeadCollectives between the worker threads of one process, over shared memory with Atomics barriers:
// lets a test run a head split across "ranks" (any world size, any backend) without a process group or
// the libtorch addon. Every rank must call the same collectives in the same order, as with c10d.
import * as tf from '@tensorflow/tfjs-core';
import type { HeadCollectives, ReduceOp } from '../../src/heads/collectives.js';

export interface SharedGroup {
  worldSize: number;
  batchSize: number;
  /** Values each rank may contribute to one collective. */
  capacity: number;
  control: SharedArrayBuffer;
  data: SharedArrayBuffer;
}

export function createSharedGroup(worldSize: number, batchSize: number, capacity = 1 << 16): SharedGroup {
  return { worldSize, batchSize, capacity, control: new SharedArrayBuffer(8), data: new SharedArrayBuffer(8 * worldSize * capacity) };
}

export function threadCollectives(g: SharedGroup, rank: number): HeadCollectives {
  const W = g.worldSize;
  const ctl = new Int32Array(g.control);
  const data = new Float64Array(g.data);
  const per = g.batchSize / W;
  const barrier = () => {
    const generation = Atomics.load(ctl, 1);
    if (Atomics.add(ctl, 0, 1) === W - 1) {
      Atomics.store(ctl, 0, 0);
      Atomics.add(ctl, 1, 1);
      Atomics.notify(ctl, 1);
    } else {
      // Atomics.wait may return before the generation moved on: wait until it has
      const deadline = Date.now() + 120_000;
      while (Atomics.load(ctl, 1) === generation) {
        if (Date.now() > deadline) throw new Error(`threadCollectives: rank ${rank} waited 120 s for the other ranks (one failed?)`);
        Atomics.wait(ctl, 1, generation, 1000);
      }
    }
  };
  /** Every rank's values (as float64), in rank order. */
  const exchange = (values: ArrayLike<number>): Float64Array[] => {
    if (values.length > g.capacity) throw new Error(`threadCollectives: ${values.length} values exceed the capacity ${g.capacity}`);
    data.set(values, rank * g.capacity);
    barrier();
    const all = Array.from({ length: W }, (_, r) => data.slice(r * g.capacity, r * g.capacity + values.length));
    barrier();
    return all;
  };
  const reduce = (values: ArrayLike<number>, op: ReduceOp): Float64Array => {
    const all = exchange(values);
    const out = Float64Array.from(all[0]);
    for (const v of all.slice(1))
      for (let i = 0; i < out.length; i++) out[i] = op === 'sum' ? out[i] + v[i] : op === 'max' ? Math.max(out[i], v[i]) : Math.min(out[i], v[i]);
    return out;
  };
  const like = <T extends Float32Array | Float64Array | Int32Array>(values: T, from: ArrayLike<number>): T =>
    (values instanceof Float64Array ? Float64Array.from(from) : values instanceof Int32Array ? Int32Array.from(from) : Float32Array.from(from)) as T;
  return {
    rank,
    worldSize: W,
    batchSize: g.batchSize,
    rows: [rank * per, (rank + 1) * per],
    allGather: (values) => {
      const all = exchange(values);
      const out = like(values, new Float64Array(values.length * W));
      all.forEach((v, r) => out.set(v, r * values.length));
      return out;
    },
    allReduce: (values, op) => like(values, reduce(values, op)),
    broadcast: (values, root) => {
      const all = exchange(values);
      return like(values, all[root]);
    },
    allGatherTensor: (t) => {
      const all = exchange(t.dataSync());
      const out = new Float32Array(t.size * W);
      all.forEach((v, r) => out.set(v, r * t.size));
      return tf.tensor(out, [t.shape[0] * W, ...t.shape.slice(1)]);
    },
    allReduceTensor: (t, op) => tf.tensor(Float32Array.from(reduce(t.dataSync(), op)), t.shape),
  };
}
