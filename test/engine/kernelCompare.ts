// Runs the same computation on a backend under test (wasm with the kernel pack, or torch) and on the cpu
// backend and returns both results, so each kernel is checked numerically against tfjs' reference.
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../../src/util/rng.js';

export function randomArray(n: number, seed: number, scale = 1): Float32Array {
  const r = new Rng(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = r.normal() * scale;
  return a;
}

/** Kernel names the backend under test has run in onBackends (for coverage checks). */
export const kernelsRun = new Set<string>();

/** fn builds tensors from plain arrays and returns tensors; results are read back as arrays. */
export async function onBackends(fn: () => tf.Tensor | tf.Tensor[], target: string): Promise<{ target: Float32Array[]; cpu: Float32Array[] }> {
  const read = () => {
    const out = fn();
    return (Array.isArray(out) ? out : [out]).map((t) => Float32Array.from(t.dataSync() as ArrayLike<number>));
  };
  await tf.setBackend('cpu');
  const cpu = tf.tidy(read);
  await tf.setBackend(target);
  let result: Float32Array[] = [];
  const info = await tf.profile(() => {
    result = tf.tidy(read);
  });
  for (const name of info.kernelNames) kernelsRun.add(name);
  return { target: result, cpu };
}

/** onBackends with the wasm backend (the kernel pack's tests). */
export async function onBoth(fn: () => tf.Tensor | tf.Tensor[]): Promise<{ wasm: Float32Array[]; cpu: Float32Array[] }> {
  const r = await onBackends(fn, 'wasm');
  return { wasm: r.target, cpu: r.cpu };
}

/** Largest |a-b| relative to max(1, |b|) over all elements. */
export function maxRelErr(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i])));
  return m;
}
