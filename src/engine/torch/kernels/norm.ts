// Normalisation and PReLU: tfjs's inference batch norm, and the training batch norm and PReLU that
// src/engine/batchNorm.ts and prelu.ts run through ATen's fused kernels on this backend (custom
// kernel names, so the autodiff tape sees one op and its closed-form gradient).
import * as tf from '@tensorflow/tfjs-core';
import type { TorchBackend } from '../backend.js';
import type { Scope } from '../aten.js';
import type { KernelTable, TorchKernelArgs } from './types.js';

/**
 * Moves the channel (last) axis to position 1, where ATen's batch norm and PReLU expect it: a view, in
 * whatever memory layout the tensor has (the convolutions leave NCHW or channels-last; see conv.ts).
 */
function channelsFirst(s: Scope, backend: TorchBackend, x: tf.TensorInfo): number {
  const r = x.shape.length;
  const h = backend.handle(x);
  if (r <= 2) return h;
  return s.op('permute', h, [0, r - 1, ...Array.from({ length: r - 2 }, (_, i) => i + 1)]);
}

/** Inverse of channelsFirst: the tfjs-shaped view of a channels-first result (owned by the caller). */
function channelsLast(s: Scope, h: number, rank: number): number {
  if (rank <= 2) return s.keep(h);
  return s.aten.t('permute', h, [0, ...Array.from({ length: rank - 2 }, (_, i) => i + 2), 1]);
}

/** tfjs FusedBatchNorm (inference): (x - mean) / sqrt(var + eps) * scale + offset, in one pass. */
function fusedBatchNorm({ inputs, backend, attrs }: TorchKernelArgs): tf.TensorInfo {
  const { x, mean, variance, offset, scale } = inputs;
  const eps = (attrs.varianceEpsilon as number | undefined) ?? 0.001;
  return backend.scoped((s) => {
    let inv = s.op('rsqrt', s.op('add.Scalar', backend.handle(variance), eps));
    if (scale) inv = s.op('mul.Tensor', inv, backend.handle(scale));
    let shift = s.op('neg', s.op('mul.Tensor', backend.handle(mean), inv));
    if (offset) shift = s.op('add.Tensor', shift, backend.handle(offset));
    return backend.output(backend.aten.t('addcmul', shift, backend.handle(x), inv), 'float32');
  });
}

/** Training batch norm over every axis but the last: [y, batch mean, 1/sqrt(batch var + eps)]. */
function batchNormTrain({ inputs, backend, attrs }: TorchKernelArgs): tf.TensorInfo[] {
  const { x, gamma, beta } = inputs;
  return backend.scoped((s) => {
    const [y, mean, invstd] = s.ops('native_batch_norm', channelsFirst(s, backend, x), backend.handle(gamma), backend.handle(beta), null, null, true, 0, attrs.eps);
    return [backend.output(channelsLast(s, y, x.shape.length), 'float32'), backend.output(s.keep(mean), 'float32'), backend.output(s.keep(invstd), 'float32')];
  });
}

/** Its gradient: [dx, dgamma, dbeta] from dy, x and the saved batch statistics. */
function batchNormTrainGrad({ inputs, backend, attrs }: TorchKernelArgs): tf.TensorInfo[] {
  const { dy, x, gamma, mean, invstd } = inputs;
  return backend.scoped((s) => {
    const [dx, dgamma, dbeta] = s.ops(
      'native_batch_norm_backward',
      channelsFirst(s, backend, dy),
      channelsFirst(s, backend, x),
      backend.handle(gamma),
      null,
      null,
      backend.handle(mean),
      backend.handle(invstd),
      true,
      attrs.eps,
      [true, true, true],
    );
    return [backend.output(channelsLast(s, dx, x.shape.length), 'float32'), backend.output(s.keep(dgamma), 'float32'), backend.output(s.keep(dbeta), 'float32')];
  });
}

/** tfjs Prelu: alpha broadcasts against x; one per channel (the last axis) is ATen's prelu. */
function prelu({ inputs, backend }: TorchKernelArgs): tf.TensorInfo {
  const { x, alpha } = inputs;
  const channels = x.shape[x.shape.length - 1];
  return backend.scoped((s) => {
    if (x.shape.length >= 2 && tf.util.sizeFromShape(alpha.shape) === channels && alpha.shape[alpha.shape.length - 1] === channels) {
      const y = s.op('prelu', channelsFirst(s, backend, x), s.op('reshape', backend.handle(alpha), [channels]));
      return backend.output(channelsLast(s, y, x.shape.length), 'float32');
    }
    const hx = backend.handle(x);
    return backend.output(backend.aten.t('where.self', s.op('gt.Scalar', hx, 0), hx, s.op('mul.Tensor', hx, backend.handle(alpha))), 'float32');
  });
}

/** PReLU gradient for a per-channel alpha [C] on the last axis: [dx, dalpha]. */
function preluGrad({ inputs, backend }: TorchKernelArgs): tf.TensorInfo[] {
  const { dy, x, alpha } = inputs;
  return backend.scoped((s) => {
    const [dx, da] = s.ops('prelu_backward', channelsFirst(s, backend, dy), channelsFirst(s, backend, x), backend.handle(alpha));
    return [backend.output(channelsLast(s, dx, x.shape.length), 'float32'), backend.output(s.keep(da), 'float32')];
  });
}

/** SGD on one variable: [w', v'] (fused on the CPU; composed of ATen ops elsewhere). */
function sgdStep({ inputs, backend, attrs }: TorchKernelArgs): tf.TensorInfo[] {
  const { w, g, v } = inputs;
  const { lr, momentum, weightDecay } = attrs as { lr: number; momentum: number; weightDecay: number };
  if (backend.device === 'cpu') {
    const [w2, v2] = backend.native.sgdStep(backend.handle(w), backend.handle(g), backend.handle(v), lr, momentum, weightDecay);
    return [backend.output(w2, 'float32'), backend.output(v2, 'float32')];
  }
  return backend.scoped((s) => {
    const v2 = s.op('add.Tensor', s.op('add.Tensor', backend.handle(g), backend.handle(w), weightDecay), backend.handle(v), momentum);
    const w2 = backend.aten.t('sub.Tensor', backend.handle(w), v2, lr);
    return [backend.output(w2, 'float32'), backend.output(s.keep(v2), 'float32')];
  });
}

/** sum(x^2) over every element, as a float32 scalar (gradient clipping's global norm, one pass). */
function squaredNorm({ inputs, backend }: TorchKernelArgs): tf.TensorInfo {
  return backend.scoped((s) => {
    const flat = s.op('reshape', backend.handle(inputs.x), [-1]);
    return backend.output(backend.aten.t('dot', flat, flat), 'float32');
  });
}

/** Custom kernels attfc's own ops call on this backend (see src/engine/batchNorm.ts, prelu.ts and src/train/sgd.ts). */
export const ATTFC_BATCH_NORM_TRAIN = 'AttfcBatchNormTrain';
export const ATTFC_BATCH_NORM_TRAIN_GRAD = 'AttfcBatchNormTrainGrad';
export const ATTFC_PRELU_GRAD = 'AttfcPreluGrad';
export const ATTFC_SGD_STEP = 'AttfcSgdStep';
export const ATTFC_SQUARED_NORM = 'AttfcSquaredNorm';

export const NORM_KERNELS: KernelTable = {
  FusedBatchNorm: fusedBatchNorm,
  Prelu: prelu,
  [ATTFC_BATCH_NORM_TRAIN]: batchNormTrain,
  [ATTFC_BATCH_NORM_TRAIN_GRAD]: batchNormTrainGrad,
  [ATTFC_PRELU_GRAD]: preluGrad,
  [ATTFC_SGD_STEP]: sgdStep,
  [ATTFC_SQUARED_NORM]: squaredNorm,
};
