// The native graph's two kernels (see native/graph_step.cc and ../graph.ts): a backbone's whole forward
// pass, and its whole backward pass from the tape the forward pass left. Custom kernel names, so the
// autodiff tape sees the backbone as one op with one closed-form gradient.
import type * as tf from '@tensorflow/tfjs-core';
import type { NativeGraph } from '../addon.js';
import type { KernelTable, TorchKernelArgs } from './types.js';

export const ATTFC_GRAPH_FORWARD = 'AttfcGraphForward';
export const ATTFC_GRAPH_BACKWARD = 'AttfcGraphBackward';

/**
 * Inputs x (NHWC images), p0..p{params-1} (the backbone's variables by program index), m0..m{masks-1}
 * (dropout multipliers); attrs graph, params, masks, mode. Outputs [y, tape (mode 2 only), new running
 * mean and variance of every batch norm (modes 1 and 2)].
 */
function graphForward({ inputs, backend, attrs }: TorchKernelArgs): tf.TensorInfo[] {
  const { graph, params, masks, mode } = attrs as { graph: NativeGraph; params: number; masks: number; mode: 0 | 1 | 2 };
  const p = Array.from({ length: params }, (_, i) => backend.handle(inputs[`p${i}`]));
  const m = Array.from({ length: masks }, (_, i) => backend.handle(inputs[`m${i}`]));
  const [y, tape, stats] = backend.native.graphForward(graph, backend.handle(inputs.x), p, m, mode);
  return [backend.output(y, 'float32'), ...(tape === null ? [] : [backend.output(tape, 'int32')]), ...stats.map((h) => backend.output(h, 'float32'))];
}

/** Inputs dy and tape; attr wanted (program indices of the trainable variables). Outputs their gradients. */
function graphBackward({ inputs, backend, attrs }: TorchKernelArgs): tf.TensorInfo[] {
  const wanted = attrs.wanted as number[];
  const grads = backend.native.graphBackward(backend.handle(inputs.tape), backend.handle(inputs.dy), wanted);
  const missing = grads.findIndex((g) => g === null);
  if (missing >= 0) {
    for (const g of grads) if (g !== null) backend.native.free(g);
    throw new Error(`attfc: the native graph computed no gradient for parameter ${wanted[missing]}`);
  }
  return grads.map((g) => backend.output(g as number, 'float32'));
}

export const GRAPH_KERNELS: KernelTable = {
  [ATTFC_GRAPH_FORWARD]: graphForward,
  [ATTFC_GRAPH_BACKWARD]: graphBackward,
};
