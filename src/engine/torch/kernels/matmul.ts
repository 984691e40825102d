// Matrix products. Transposes are strided views: ATen hands them to BLAS as transpose flags, no copy.
import type * as tf from '@tensorflow/tfjs-core';
import type { TorchBackend } from '../backend.js';
import type { Scope } from '../aten.js';
import { applyActivation } from './conv.js';
import type { KernelTable, TorchKernelArgs } from './types.js';

function product(s: Scope, backend: TorchBackend, a: tf.TensorInfo, b: tf.TensorInfo, attrs: Record<string, unknown>): number {
  let ha = backend.handle(a);
  let hb = backend.handle(b);
  if (attrs.transposeA) ha = s.op('transpose.int', ha, -2, -1);
  if (attrs.transposeB) hb = s.op('transpose.int', hb, -2, -1);
  return s.op('matmul', ha, hb);
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
