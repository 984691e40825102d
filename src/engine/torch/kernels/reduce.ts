// Reductions over axes (sum, mean, max/min, prod, all/any), arg-max/min and softmax.
import type * as tf from '@tensorflow/tfjs-core';
import type { TorchBackend } from '../backend.js';
import { reductionAxes, type KernelTable, type TorchKernel, type TorchKernelArgs } from './types.js';

/** An empty axis list reduces nothing in tfjs, but everything in ATen: return a copy instead. */
function copy(backend: TorchBackend, x: tf.TensorInfo, dtype: tf.DataType): tf.TensorInfo {
  return backend.output(backend.aten.t('to.dtype', backend.handle(x), dtype, false, true), dtype);
}

function sum({ inputs, backend, attrs }: TorchKernelArgs): tf.TensorInfo {
  const x = inputs.x;
  const axes = reductionAxes(attrs.axis, x.shape.length);
  const dtype = x.dtype === 'float32' ? 'float32' : 'int32'; // tfjs sums bool and int32 as int32
  if (axes.length === 0) return copy(backend, x, dtype);
  return backend.output(backend.aten.t('sum.dim_IntList', backend.handle(x), axes, Boolean(attrs.keepDims), dtype === 'int32' ? 'int32' : null), dtype);
}

function mean({ inputs, backend, attrs }: TorchKernelArgs): tf.TensorInfo {
  const x = inputs.x;
  const axes = reductionAxes(attrs.axis, x.shape.length);
  if (axes.length === 0) return copy(backend, x, 'float32');
  return backend.scoped((s) => {
    const xf = x.dtype === 'float32' ? backend.handle(x) : s.op('to.dtype', backend.handle(x), 'float32');
    return backend.output(backend.aten.t('mean.dim', xf, axes, Boolean(attrs.keepDims)), 'float32');
  });
}

function extremum(op: 'amax' | 'amin'): TorchKernel {
  return ({ inputs, backend, attrs }) => {
    const x = inputs.x;
    const axes = reductionAxes(attrs.reductionIndices ?? attrs.axis, x.shape.length);
    if (axes.length === 0) return copy(backend, x, x.dtype);
    return backend.output(backend.aten.t(op, backend.handle(x), axes, Boolean(attrs.keepDims)), x.dtype);
  };
}

/** ATen's prod/all/any take one dimension at a time: reduce the axes from the last one down. */
function oneAxisAtATime(op: string, dtypeOf: (x: tf.TensorInfo) => tf.DataType): TorchKernel {
  return ({ inputs, backend, attrs }) => {
    const x = inputs.x;
    const axes = reductionAxes(attrs.axis, x.shape.length);
    const dtype = dtypeOf(x);
    if (axes.length === 0) return copy(backend, x, dtype);
    return backend.scoped((s) => {
      let h = backend.handle(x);
      for (const a of [...axes].reverse()) h = s.op(op, h, a, Boolean(attrs.keepDims));
      return backend.output(s.keep(h), dtype);
    });
  };
}

function argExtremum(op: 'argmax' | 'argmin'): TorchKernel {
  return ({ inputs, backend, attrs }) => {
    const x = inputs.x;
    const axis = reductionAxes(attrs.axis, x.shape.length)[0];
    return backend.output(backend.aten.t(op, backend.handle(x), axis, false), 'int32');
  };
}

function softmax({ inputs, backend, attrs }: TorchKernelArgs): tf.TensorInfo {
  const logits = inputs.logits;
  const dim = (attrs.dim as number | undefined) ?? -1;
  return backend.output(backend.aten.t('softmax.int', backend.handle(logits), dim), 'float32');
}

export const REDUCE_KERNELS: KernelTable = {
  Sum: sum,
  Mean: mean,
  Max: extremum('amax'),
  Min: extremum('amin'),
  Prod: oneAxisAtATime('prod.dim_int', (x) => (x.dtype === 'float32' ? 'float32' : 'int32')),
  All: oneAxisAtATime('all.dim', () => 'bool'),
  Any: oneAxisAtATime('any.dim', () => 'bool'),
  ArgMax: argExtremum('argmax'),
  ArgMin: argExtremum('argmin'),
  Softmax: softmax,
};
