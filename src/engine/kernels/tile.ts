// Tile where only size-1 axes are repeated (every BN/Mean gradient does this) is a broadcast: Fill(0) plus a
// broadcasting Add runs vectorised instead of wasm's per-element Tile loop.
import { type KernelArgs, type Info, run, free, stockKernel, zeros } from './util.js';
import type * as tf from '@tensorflow/tfjs-core';

export function tileBroadcast(args: KernelArgs): Info {
  const { inputs, backend: b, attrs } = args;
  const { x } = inputs;
  const reps = attrs.reps as number[];
  const broadcastOnly = reps.every((r, i) => r === 1 || x.shape[i] === 1);
  if (!broadcastOnly || x.dtype !== 'float32')
    return stockKernel('Tile')(args as unknown as tf.KernelConfig & Parameters<tf.KernelFunc>[0]) as Info;
  const z = zeros(b, x.shape.map((d, i) => d * reps[i]));
  const out = run(b, 'Add', { a: z, b: x });
  free(b, z);
  return out;
}
