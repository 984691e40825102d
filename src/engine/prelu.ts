// PReLU with a fused backward on wasm/cpu: one JS pass gives dx and the per-channel alpha gradient.
// tfjs' own gradient runs Greater, two Selects, a Multiply and a leading-axes Sum (which transposes).
import * as tf from '@tensorflow/tfjs-core';
import { heapView } from './heapView.js';
import { ATTFC_PRELU_GRAD } from './torch/kernels/index.js';

/** y = x > 0 ? x : alpha * x, alpha per channel (last axis). */
export function prelu<T extends tf.Tensor>(x: T, alpha: tf.Tensor): T {
  const b = tf.getBackend();
  if (b === 'torch' && alpha.size === x.shape[x.rank - 1]) return preluTorch(x, alpha);
  if (b !== 'wasm' && b !== 'cpu') return tf.prelu(x, alpha) as T;
  const c = x.shape[x.rank - 1];
  if (alpha.size !== c) return tf.prelu(x, alpha) as T;
  const f = tf.customGrad((xIn, aIn, save) => {
    (save as tf.GradSaveFunc)([xIn as tf.Tensor, aIn as tf.Tensor]);
    return {
      value: tf.prelu(xIn as tf.Tensor, aIn as tf.Tensor),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const ds = heapView(dy as tf.Tensor);
        const xs = heapView(saved[0]);
        const a = saved[1].dataSync();
        const dx = new Float32Array(ds.length);
        const da = new Float64Array(c);
        for (let i = 0; i < ds.length; i += c)
          for (let j = 0; j < c; j++) {
            const v = xs[i + j];
            const d = ds[i + j];
            if (v > 0) dx[i + j] = d;
            else {
              dx[i + j] = a[j] * d;
              da[j] += d * v;
            }
          }
        return [tf.tensor(dx, saved[0].shape), tf.tensor(Float32Array.from(da), saved[1].shape)];
      },
    };
  });
  return f(x, alpha) as T;
}

/** On torch: ATen's prelu_backward gives dx and dalpha in one kernel. */
function preluTorch<T extends tf.Tensor>(x: T, alpha: tf.Tensor): T {
  const f = tf.customGrad((xIn, aIn, save) => {
    (save as tf.GradSaveFunc)([xIn as tf.Tensor, aIn as tf.Tensor]);
    return {
      value: tf.prelu(xIn as tf.Tensor, aIn as tf.Tensor),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [dx, da] = tf.engine().runKernel(ATTFC_PRELU_GRAD, { dy: dy as tf.Tensor, x: saved[0], alpha: tf.reshape(saved[1], [-1]) }, {}) as tf.Tensor[];
        return [dx, tf.reshape(da, saved[1].shape)];
      },
    };
  });
  return f(x, alpha) as T;
}
