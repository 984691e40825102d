// SGD with momentum and weight decay (PyTorch semantics: decay added to the gradient before momentum),
// and gradient clipping by global norm, as in the reference recipe.
import * as tf from '@tensorflow/tfjs-core';
import { heapView } from '../engine/heapView.js';
import { ATTFC_SGD_STEP, ATTFC_SQUARED_NORM } from '../engine/torch/kernels/index.js';

export interface SgdOptions {
  momentum: number;
  weightDecay: number;
}

export class Sgd {
  private readonly velocity: tf.Variable[];

  constructor(
    readonly variables: tf.Variable[],
    readonly options: SgdOptions,
  ) {
    // inside tidy: tf.variable shares the zeros' data, and the zeros tensor itself must not outlive it
    this.velocity = variables.map((v) => tf.tidy(() => tf.variable(tf.zerosLike(v), false, `${v.name}/momentum`)));
  }

  /** One update with gradients aligned to `variables`. */
  step(grads: tf.Tensor[], lr: number): void {
    const { momentum, weightDecay } = this.options;
    const fused = tf.getBackend() === 'wasm' || tf.getBackend() === 'cpu';
    const torch = tf.getBackend() === 'torch';
    this.variables.forEach((w, i) => {
      if (torch) {
        // one pass on the native side instead of five tensor ops
        const v = this.velocity[i];
        tf.tidy(() => {
          const [wNew, vNew] = tf.engine().runKernel(ATTFC_SGD_STEP, { w, g: grads[i], v }, { lr, momentum, weightDecay }) as tf.Tensor[];
          v.assign(vNew);
          w.assign(wNew);
        });
        return;
      }
      if (fused) {
        // One JS pass; only the new v and w reach the heap (the op chain makes six temporaries the size
        // of w, which for a full-FC table was the difference between fitting and not).
        const v = this.velocity[i];
        const ws = heapView(w);
        const gs = heapView(grads[i]);
        const vs = heapView(v);
        const vNew = new Float32Array(ws.length);
        const wNew = new Float32Array(ws.length);
        for (let j = 0; j < ws.length; j++) {
          const vv = momentum * vs[j] + gs[j] + weightDecay * ws[j];
          vNew[j] = vv;
          wNew[j] = ws[j] - lr * vv;
        }
        tf.tidy(() => {
          v.assign(tf.tensor(vNew, v.shape));
          w.assign(tf.tensor(wNew, w.shape));
        });
        return;
      }
      tf.tidy(() => {
        const g = weightDecay ? tf.add(grads[i], tf.mul(w, weightDecay)) : grads[i];
        const v = this.velocity[i];
        v.assign(tf.add(tf.mul(v, momentum), g));
        w.assign(tf.sub(w, tf.mul(v, lr)));
      });
    });
  }

  /** Momentum buffers, in the order of `variables` (for checkpoints). */
  momentumBuffers(): tf.Variable[] {
    return this.velocity;
  }

  stateBytes(): number {
    return this.velocity.reduce((s, v) => s + v.size * 4, 0);
  }

  dispose(): void {
    tf.dispose(this.velocity);
  }
}

/**
 * Scales gradients so their global L2 norm is at most maxNorm (torch.nn.utils.clip_grad_norm_).
 * Returns new tensors (the caller disposes both sets) and the norm before clipping.
 */
export function clipByGlobalNorm(grads: tf.Tensor[], maxNorm: number): { grads: tf.Tensor[]; norm: number } {
  const squared = tf.getBackend() === 'torch' ? (g: tf.Tensor) => tf.engine().runKernel(ATTFC_SQUARED_NORM, { x: g }, {}) as tf.Tensor : (g: tf.Tensor) => tf.sum(tf.square(g));
  const norm = tf.tidy(() => tf.sqrt(tf.addN(grads.map(squared))).dataSync()[0]);
  const scale = Math.min(1, maxNorm / (norm + 1e-6));
  const out = grads.map((g) => (scale < 1 ? tf.mul(g, scale) : tf.clone(g)));
  return { grads: out, norm };
}
