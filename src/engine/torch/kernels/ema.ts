// The class encoder's exponential moving average over all of f_k's tensors in one kernel (one addon
// call on the CPU; ATen ops per tensor elsewhere). See src/engine/ema.ts.
import type * as tf from '@tensorflow/tfjs-core';
import type { KernelTable, TorchKernelArgs } from './types.js';

export const ATTFC_EMA_STEP = 'AttfcEmaStep';

/** Inputs k0, q0, k1, q1, ...; attrs count, momentum m. Outputs k_i * m + q_i * (1 - m). */
function emaStep({ inputs, backend, attrs }: TorchKernelArgs): tf.TensorInfo[] {
  const { count, momentum } = attrs as { count: number; momentum: number };
  const ks = Array.from({ length: count }, (_, i) => backend.handle(inputs[`k${i}`]));
  const qs = Array.from({ length: count }, (_, i) => backend.handle(inputs[`q${i}`]));
  if (backend.device === 'cpu') return backend.native.emaStep(ks, qs, momentum).map((h) => backend.output(h, 'float32'));
  return backend.scoped((s) => ks.map((k, i) => backend.output(backend.aten.t('add.Tensor', s.op('mul.Scalar', k, momentum), s.op('mul.Scalar', qs[i], 1 - momentum)), 'float32')));
}

export const EMA_KERNELS: KernelTable = { [ATTFC_EMA_STEP]: emaStep };
