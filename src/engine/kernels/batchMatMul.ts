// BatchMatMul with a transposed operand falls to a naive C loop on wasm (1.5-3.5 GFLOPS). Every matmul
// gradient has one. An explicit Transpose first lets the XNNPACK path run (~35-60 GFLOPS).
// The transpose, not the product, dominates when the transposed operand is huge (dA = dC . B^T with
// B [512,N]): then compute the transposed product C^T = op(B)^T . op(A)^T instead, which transposes the
// other operand plus the (small) result. Each call picks whichever moves fewer elements.
// The transposes are a tiled JS pass over the heap (heapTranspose.ts).
import { type KernelArgs, type Info, free, stockKernel, transpose } from './util.js';
import type * as tf from '@tensorflow/tfjs-core';
import { transposeLast2 } from './heapTranspose.js';

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
  // float32 (every gradient): the JS tiled transpose is ~2x the stock kernel on [512,1e5].
  const swapLast = (t: Info) => (t.dtype === 'float32' ? transposeLast2(b, t) : transpose(b, t, perm));
  const size = (t: Info) => t.shape.reduce((p, q) => p * q, 1);
  const m = a.shape[transposeA ? r - 1 : r - 2];
  const n = bb.shape[transposeB ? r - 2 : r - 1];
  // Direct: transpose the operands flagged transposed. Swapped: transpose the unflagged ones and the result.
  const direct = (transposeA ? size(a) : 0) + (transposeB ? size(bb) : 0);
  const swapped = (transposeA ? 0 : size(a)) + (transposeB ? 0 : size(bb)) + m * n;
  if (direct <= swapped) {
    const at = transposeA ? swapLast(a) : a;
    const bt = transposeB ? swapLast(bb) : bb;
    const out = call(at, bt, false, false);
    if (at !== a) free(b, at);
    if (bt !== bb) free(b, bt);
    return out;
  }
  // C^T = op(B)^T . op(A)^T; op(B)^T is bb itself when transposeB, else bb transposed (same for a).
  const lhs = transposeB ? bb : swapLast(bb);
  const rhs = transposeA ? a : swapLast(a);
  const ct = call(lhs, rhs, false, false);
  const out = swapLast(ct);
  if (lhs !== bb) free(b, lhs);
  if (rhs !== a) free(b, rhs);
  free(b, ct);
  return out;
}
