// Matrix products. Transposes are strided views: ATen hands them to BLAS as transpose flags, no copy.
import type * as tf from '@tensorflow/tfjs-core';
import type { TorchBackend } from '../backend.js';
import type { Scope } from '../aten.js';
import { applyActivation } from './conv.js';
import type { KernelTable, TorchKernelArgs } from './types.js';

/**
 * op(a) . op(b). tf.matMul hands every product over as rank 3 with a batch of 1; ATen's batched product
 * with a transposed operand is up to 4x slower than its plain one here, so a batch of 1 on both sides is
 * one 2-D product (transposes stay strided views, which BLAS takes as flags).
 */
function product(s: Scope, backend: TorchBackend, a: tf.TensorInfo, b: tf.TensorInfo, attrs: Record<string, unknown>): number {
  let ha = backend.handle(a);
  let hb = backend.handle(b);
  const single = a.shape.length === 3 && b.shape.length === 3 && a.shape[0] === 1 && b.shape[0] === 1;
  if (single) {
    ha = s.op('select.int', ha, 0, 0);
    hb = s.op('select.int', hb, 0, 0);
  }
  if (attrs.transposeA) ha = s.op('transpose.int', ha, -2, -1);
  if (attrs.transposeB) hb = s.op('transpose.int', hb, -2, -1);
  return single ? s.op('unsqueeze', s.op('mm', ha, hb), 0) : s.op('matmul', ha, hb);
}

function batchMatMul({ inputs, backend, attrs }: TorchKernelArgs): tf.TensorInfo {
  const { a, b } = inputs;
  return backend.scoped((s) => backend.output(s.keep(product(s, backend, a, b, attrs)), 'float32'));
}

function fusedMatMul({ inputs, backend, attrs }: TorchKernelArgs): tf.TensorInfo {
  const { a, b, bias, preluActivationWeights } = inputs;
  return backend.scoped((s) => {
    let y = product(s, backend, a, b, attrs);
    if (bias) y = s.op('add.Tensor', y, backend.handle(bias));
    y = applyActivation(s, backend, y, attrs.activation as string, preluActivationWeights, attrs.leakyreluAlpha as number);
    return backend.output(s.keep(y), 'float32');
  });
}

export const MATMUL_KERNELS: KernelTable = {
  BatchMatMul: batchMatMul,
  _FusedMatMul: fusedMatMul,
};
