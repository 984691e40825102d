// Read a tensor's float32 values from JS without a copy where the backend allows it.
import * as tf from '@tensorflow/tfjs-core';

/**
 * On wasm: a view into the wasm heap (valid until the next allocation may grow the heap, so use it
 * immediately); elsewhere: dataSync().
 */
export function heapView(x: tf.Tensor): Float32Array {
  const b = tf.backend() as unknown as { typedArrayFromHeap?: (t: { shape: number[]; dtype: string; dataId: object }) => Float32Array };
  if (tf.getBackend() === 'wasm' && b.typedArrayFromHeap) return b.typedArrayFromHeap({ shape: x.shape, dtype: x.dtype, dataId: x.dataId });
  return x.dataSync() as Float32Array;
}
