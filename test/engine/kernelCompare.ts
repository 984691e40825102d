// Runs the same computation on the wasm backend (with the kernel pack) and on the cpu backend and
// returns both results, so each registered kernel is checked numerically against tfjs' reference.
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../../src/util/rng.js';

export function randomArray(n: number, seed: number, scale = 1): Float32Array {
  const r = new Rng(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = r.normal() * scale;
  return a;
}

/** fn builds tensors from plain arrays and returns tensors; results are read back as arrays. */
export async function onBoth(fn: () => tf.Tensor | tf.Tensor[]): Promise<{ wasm: Float32Array[]; cpu: Float32Array[] }> {
  const runOn = async (name: string) => {
    await tf.setBackend(name);
    return tf.tidy(() => {
      const out = fn();
      return (Array.isArray(out) ? out : [out]).map((t) => t.dataSync().slice() as Float32Array);
    });
  };
  const cpu = await runOn('cpu');
  const wasm = await runOn('wasm');
  return { wasm, cpu };
}

/** Largest |a-b| relative to max(1, |b|) over all elements. */
export function maxRelErr(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i])));
  return m;
}
