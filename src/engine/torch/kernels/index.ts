// Every kernel of backend 'torch', by family. A tfjs kernel not listed here throws a one-line error
// naming it (never a silent fallback to another backend).
import * as tf from '@tensorflow/tfjs-core';
import { CONV_KERNELS } from './conv.js';
import { ELEMENTWISE_KERNELS } from './elementwise.js';
import { EMA_KERNELS } from './ema.js';
import { GRAPH_KERNELS } from './graph.js';
import { MATMUL_KERNELS } from './matmul.js';
import { NORM_KERNELS } from './norm.js';
import { REDUCE_KERNELS } from './reduce.js';
import { SHAPE_KERNELS } from './shape.js';
import type { KernelTable } from './types.js';

export { ATTFC_EMA_STEP } from './ema.js';
export { ATTFC_GRAPH_FORWARD, ATTFC_GRAPH_BACKWARD } from './graph.js';
export { ATTFC_BATCH_NORM_TRAIN, ATTFC_BATCH_NORM_TRAIN_GRAD, ATTFC_PRELU_GRAD, ATTFC_SGD_STEP, ATTFC_SQUARED_NORM } from './norm.js';

export const TORCH_KERNELS: KernelTable = {
  ...ELEMENTWISE_KERNELS,
  ...REDUCE_KERNELS,
  ...SHAPE_KERNELS,
  ...CONV_KERNELS,
  ...MATMUL_KERNELS,
  ...NORM_KERNELS,
  ...GRAPH_KERNELS,
  ...EMA_KERNELS,
};

export class KernelNotImplementedError extends Error {
  constructor(readonly kernel: string) {
    super(`attfc: kernel ${kernel} is not implemented on backend torch`);
    this.name = 'KernelNotImplementedError';
  }
}

/** Registers the torch kernels, and for every other kernel tfjs knows (the cpu backend's list) a thrower. */
export function registerTorchKernels(backendName: string): void {
  for (const [kernelName, fn] of Object.entries(TORCH_KERNELS))
    if (!tf.getKernel(kernelName, backendName)) tf.registerKernel({ kernelName, backendName, kernelFunc: fn as unknown as tf.KernelFunc });
  for (const { kernelName } of tf.getKernelsForBackend('cpu'))
    if (!tf.getKernel(kernelName, backendName))
      tf.registerKernel({
        kernelName,
        backendName,
        kernelFunc: () => {
          throw new KernelNotImplementedError(kernelName);
        },
      });
}
