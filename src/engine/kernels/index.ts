// The attfc kernel pack for tfjs-backend-wasm 4.22.0: the gradient kernels a CNN training step needs that
// wasm lacks, and faster versions of those it runs slowly, all composed from existing XNNPACK kernels.
import * as tf from '@tensorflow/tfjs-core';
import { stockKernel, type ComposedKernel } from './util.js';
import { conv2dBackpropFilter } from './conv2dBackpropFilter.js';
import { conv2dBackpropInput } from './conv2dBackpropInput.js';
import { depthwiseBackpropFilter } from './depthwiseBackpropFilter.js';
import { depthwiseBackpropInput } from './depthwiseBackpropInput.js';
import { unsortedSegmentSum } from './unsortedSegmentSum.js';
import { tileBroadcast } from './tile.js';
import { batchMatMulTransposed } from './batchMatMul.js';

/** Kernel name -> replacement; `missing` ones do not exist on stock wasm, the others are slow there. */
export const KERNEL_PACK: ReadonlyArray<{ name: string; kernel: ComposedKernel; missing: boolean }> = [
  { name: 'Conv2DBackpropFilter', kernel: conv2dBackpropFilter, missing: true },
  { name: 'DepthwiseConv2dNativeBackpropInput', kernel: depthwiseBackpropInput, missing: true },
  { name: 'DepthwiseConv2dNativeBackpropFilter', kernel: depthwiseBackpropFilter, missing: true },
  { name: 'UnsortedSegmentSum', kernel: unsortedSegmentSum, missing: true },
  { name: 'Conv2DBackpropInput', kernel: conv2dBackpropInput, missing: false },
  { name: 'BatchMatMul', kernel: batchMatMulTransposed, missing: false },
  { name: 'Tile', kernel: tileBroadcast, missing: false },
];

// Stock kernels the composed ones call; captured before any of them is replaced.
const USED = ['Conv2D', 'DepthwiseConv2dNative', 'Transpose', 'Reshape', 'Slice', 'PadV2', 'StridedSlice', 'Fill',
  'Reverse', 'Pack', 'Sum', 'Add', 'ScatterNd', 'Tile', 'BatchMatMul'];

let registered = false;

/** Registers the pack on the 'wasm' backend (idempotent). */
export function registerKernelPack(): void {
  if (registered) return;
  for (const name of USED) stockKernel(name);
  for (const { name, missing } of KERNEL_PACK) if (!missing) stockKernel(name); // so unregisterKernelPack can restore them
  for (const { name, kernel } of KERNEL_PACK) {
    if (tf.getKernel(name, 'wasm')) tf.unregisterKernel(name, 'wasm');
    tf.registerKernel({ kernelName: name, backendName: 'wasm', kernelFunc: kernel as unknown as tf.KernelFunc });
  }
  registered = true;
}

/** Restores the stock wasm kernels (benchmarks compare stock against the pack in one run). */
export function unregisterKernelPack(): void {
  if (!registered) return;
  for (const { name, missing } of KERNEL_PACK) {
    tf.unregisterKernel(name, 'wasm');
    if (!missing) tf.registerKernel({ kernelName: name, backendName: 'wasm', kernelFunc: stockKernel(name) });
  }
  registered = false;
}

export function kernelPackRegistered(): boolean {
  return registered;
}
