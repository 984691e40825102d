// Copying variable values between the WASM heap and a flat shared Float32Array, in a fixed order.
import * as tf from '@tensorflow/tfjs-core';
import { heapView } from '../../engine/heapView.js';

export function floatCount(vars: readonly tf.Variable[]): number {
  return vars.reduce((n, v) => n + v.size, 0);
}

/** Writes every variable's values one after the other from `offset`; returns the offset after them. */
export function writeVariables(vars: readonly tf.Tensor[], into: Float32Array, offset = 0): number {
  for (const v of vars) {
    into.set(heapView(v), offset);
    offset += v.size;
  }
  return offset;
}

/** Assigns every variable from the flat values at `offset` (the layout writeVariables made). */
export function assignVariables(vars: readonly tf.Variable[], from: Float32Array, offset = 0): number {
  // wasm copies new tensor data into its heap at once; other backends may keep the array itself, and a
  // tensor must never alias shared memory the other side overwrites later
  const copies = tf.getBackend() !== 'wasm';
  for (const v of vars) {
    const values = copies ? from.slice(offset, offset + v.size) : from.subarray(offset, offset + v.size);
    tf.tidy(() => v.assign(tf.tensor(values, v.shape, 'float32')));
    offset += v.size;
  }
  return offset;
}
