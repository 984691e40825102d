// theta_k <- m * theta_k + (1 - m) * theta_q over lists of variables (AttFC's class encoder): one kernel
// for the whole list on backend torch, two multiplies and an add per tensor elsewhere. Both compute
// add(mul(k, m), mul(q, 1 - m)) in float32.
import * as tf from '@tensorflow/tfjs-core';
import { ATTFC_EMA_STEP } from './torch/kernels/index.js';

export function emaUpdate(targets: tf.Variable[], sources: tf.Tensor[], m: number): void {
  if (targets.length !== sources.length) throw new Error(`emaUpdate: ${targets.length} targets but ${sources.length} sources`);
  // assign() inside tidy: the new value's tensor handle is released, its data stays with the variable
  tf.tidy(() => {
    if (tf.getBackend() === 'torch' && targets.length > 0) {
      const inputs: tf.NamedTensorMap = {};
      targets.forEach((k, i) => {
        inputs[`k${i}`] = k;
        inputs[`q${i}`] = sources[i];
      });
      const out = tf.engine().runKernel(ATTFC_EMA_STEP, inputs, { count: targets.length, momentum: m }) as tf.Tensor[];
      targets.forEach((k, i) => k.assign(out[i]));
      return;
    }
    targets.forEach((k, i) => k.assign(tf.add(tf.mul(k, m), tf.mul(sources[i], 1 - m))));
  });
}
