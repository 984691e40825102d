// BatchMatMul with a transposed operand falls to a naive C loop on wasm (1.5-3.5 GFLOPS). Every matmul
// gradient has one. An explicit Transpose first lets the XNNPACK path run (~35-60 GFLOPS).
import { type KernelArgs, type Info, free, stockKernel, transpose } from './util.js';
import type * as tf from '@tensorflow/tfjs-core';

export function batchMatMulTransposed(args: KernelArgs): Info {
  const { inputs, backend: b, attrs } = args;
  const { a, b: bb } = inputs;
  const transposeA = attrs.transposeA as boolean;
  const transposeB = attrs.transposeB as boolean;
  const stock = stockKernel('BatchMatMul');
  const call = (x: Info, y: Info, ta: boolean, tb: boolean) =>
    stock({ inputs: { a: x, b: y }, backend: b as unknown as tf.KernelBackend, attrs: { transposeA: ta, transposeB: tb } }) as Info;
  const batch = (s: number[]) => s.slice(0, -2).reduce((p, q) => p * q, 1);
  if ((!transposeA && !transposeB) || a.shape.length !== bb.shape.length || batch(a.shape) !== 1 || batch(bb.shape) !== 1)
    return call(a, bb, transposeA, transposeB);
  const r = a.shape.length;
  const perm = [...Array(r).keys()];
  [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
  const at = transposeA ? transpose(b, a, perm) : a;
  const bt = transposeB ? transpose(b, bb, perm) : bb;
  const out = call(at, bt, false, false);
  if (at !== a) free(b, at);
  if (bt !== bb) free(b, bt);
  return out;
}
