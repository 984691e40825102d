// Running a backbone as one native graph on backend torch (native/graph_step.cc): the forward pass is
// one kernel and, under a gradient tape, its backward pass another, joined by tf.customGrad. The
// backbone's variables are the graph's weights, read as they are; the new batch-norm running statistics
// come back as tensors for the caller to assign. Gradients flow to the variables, not to the input
// images (nothing in attfc differentiates a backbone by its input). This module only runs graphs; what
// they compute is described by src/backbones/nativeProgram.ts.
import * as tf from '@tensorflow/tfjs-core';
import type { NativeGraph } from './addon.js';
import type { TorchBackend } from './backend.js';
import { ATTFC_GRAPH_BACKWARD, ATTFC_GRAPH_FORWARD } from './kernels/graph.js';

/**
 * Whether backbones run as native graphs now: backend torch on the CPU with an addon that has them, unless
 * ATTFC_TORCH_GRAPH=0 asks for tfjs' op-by-op path (for comparisons).
 */
export function nativeGraphActive(): boolean {
  if (tf.getBackend() !== 'torch' || process.env.ATTFC_TORCH_GRAPH === '0') return false;
  const b = tf.backend() as TorchBackend;
  return b.device === 'cpu' && typeof b.native.graphCreate === 'function';
}

/** Parses a program (nativeProgram().program) on the current torch backend. */
export function createNativeGraph(program: Int32Array): NativeGraph {
  return (tf.backend() as TorchBackend).native.graphCreate(program);
}

export interface NativeGraphCall {
  graph: NativeGraph;
  /** NHWC images. */
  x: tf.Tensor4D;
  /** Every variable of the backbone, by program index. */
  params: tf.Tensor[];
  /** Program indices of the variables that get gradients (the trainable ones). */
  trainable: number[];
  /** Dropout multipliers in program order (training only; empty otherwise). */
  masks: tf.Tensor[];
  /** Batch statistics (and running-statistics updates, dropout) when true; folded running statistics when false. */
  training: boolean;
  /** Training: receives the new running mean and variance of every batch norm, in program order (disposed after). */
  onStats?: (stats: tf.Tensor[]) => void;
  /** Under a tape: receives the gradients (trainable order) as soon as the backward pass has made them. */
  onGradients?: (gradients: tf.Tensor[]) => void;
}

/** The backbone's output [N, D]. Under a recording gradient tape the trainable variables get gradients. */
export function runNativeGraph(c: NativeGraphCall): tf.Tensor2D {
  const mode = !c.training ? 0 : tf.engine().isTapeOn() ? 2 : 1;
  const inputs: tf.NamedTensorMap = { x: c.x };
  c.params.forEach((p, i) => (inputs[`p${i}`] = p));
  c.masks.forEach((m, i) => (inputs[`m${i}`] = m));
  const attrs = { graph: c.graph, params: c.params.length, masks: c.masks.length, mode } as unknown as tf.NamedAttrMap;
  const forward = () => tf.engine().runKernel(ATTFC_GRAPH_FORWARD, inputs, attrs) as tf.Tensor[];
  if (mode !== 2) {
    const [y, ...stats] = forward();
    if (stats.length) {
      c.onStats?.(stats);
      tf.dispose(stats);
    }
    return y as tf.Tensor2D;
  }
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const [y, tape, ...stats] = forward();
    save([tape]);
    c.onStats?.(stats);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const grads = tf.engine().runKernel(ATTFC_GRAPH_BACKWARD, { dy: dy as tf.Tensor, tape: saved[0] }, { wanted: c.trainable } as unknown as tf.NamedAttrMap) as tf.Tensor[];
        c.onGradients?.(grads);
        return grads;
      },
    };
  }) as unknown as (...t: tf.Tensor[]) => tf.Tensor2D;
  return f(...c.trainable.map((i) => c.params[i]));
}
