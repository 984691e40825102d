// What a torch kernel receives and returns; kernels are plain functions over the backend.
import type * as tf from '@tensorflow/tfjs-core';
import type { TorchBackend } from '../backend.js';

export interface TorchKernelArgs {
  inputs: Record<string, tf.TensorInfo>;
  backend: TorchBackend;
  attrs: Record<string, unknown>;
}

export type TorchKernel = (args: TorchKernelArgs) => tf.TensorInfo | tf.TensorInfo[];

/** kernel name -> implementation, one table per op family. */
export type KernelTable = Record<string, TorchKernel>;

/** Axes of a reduction attribute (number, list, or null = all), non-negative and sorted. */
export function reductionAxes(axis: unknown, rank: number): number[] {
  if (axis === null || axis === undefined) return [...Array(rank).keys()];
  const list = (Array.isArray(axis) ? axis : [axis]) as number[];
  return [...new Set(list.map((a) => (a < 0 ? a + rank : a)))].sort((a, b) => a - b);
}
