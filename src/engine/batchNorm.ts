// Batch normalisation for training with a closed-form backward pass.
//
// tf.moments + tf.batchNorm differentiates through mean/variance op by op: on IResNet-18 that costs
// seconds per step and ~1 GiB of extra heap. The closed form needs only x-hat, 1/std and gamma.
import * as tf from '@tensorflow/tfjs-core';
import { heapView } from './heapView.js';
import { ATTFC_BATCH_NORM_TRAIN, ATTFC_BATCH_NORM_TRAIN_GRAD } from './torch/kernels/index.js';

export interface BatchStats {
  /** Batch mean per channel. */
  mean: tf.Tensor1D;
  /** Biased batch variance per channel (divide by N). */
  variance: tf.Tensor1D;
  /** Number of values reduced per channel (for the unbiased correction N/(N-1)). */
  count: number;
}

/**
 * Per-channel sum over every axis but the last. On wasm and cpu it is a JS loop over the tensor's memory
 * with float64 accumulators: wasm's Sum over leading axes transposes the whole tensor first and then adds
 * single-threaded in float32 (it saturates at 2^24), which made it the slowest part of batch-norm.
 */
export function channelSum(x: tf.Tensor): tf.Tensor1D {
  const name = tf.getBackend();
  if (name !== 'wasm' && name !== 'cpu') return tf.sum(x, [...Array(x.rank - 1).keys()]) as tf.Tensor1D;
  const c = x.shape[x.rank - 1];
  const data = heapView(x);
  const acc = new Float64Array(c);
  for (let i = 0; i < data.length; i += c) for (let j = 0; j < c; j++) acc[j] += data[i + j];
  return tf.tensor1d(Float32Array.from(acc));
}

/** Backends where reading tensor memory from JS is free and fused JS loops beat chains of small kernels. */
function jsBackend(): boolean {
  const n = tf.getBackend();
  return n === 'wasm' || n === 'cpu';
}

/**
 * Synchronised batch norm (PyTorch's SyncBatchNorm): the batch statistics of every training-mode batch
 * norm are those of the whole batch spread over the processes of a data-parallel run, so N processes
 * normalise exactly as one process with the whole batch would. The sync sums tensors over the ranks.
 */
export interface BatchNormSync {
  /** Every rank's tensor stacked along axis 0 (rank order). */
  allGather(t: tf.Tensor): tf.Tensor;
  /** Element-wise sum over the ranks (a new tensor). */
  allReduceSum(t: tf.Tensor): tf.Tensor;
}

let sync: BatchNormSync | null = null;

/** Turns synchronised batch norm on for every training-mode batch norm of this process (null: off). */
export function setBatchNormSync(s: BatchNormSync | null): void {
  sync = s;
}

/** Whether training-mode batch norms are synchronised now (a fused path that bypasses batchNormTrain must not run). */
export function batchNormSyncActive(): boolean {
  return sync !== null;
}

/**
 * y = gamma * (x - mean) / sqrt(var + eps) + beta with batch statistics over every axis but the last.
 * `onStats` receives the batch statistics (e.g. to update running averages); they are disposed after.
 * `impl` forces the fused-JS or the tensor-op implementation (default: fused on wasm/cpu, ATen's
 * native batch norm on torch, tensor ops elsewhere).
 */
export function batchNormTrain<T extends tf.Tensor>(
  x: T,
  gamma: tf.Tensor1D,
  beta: tf.Tensor1D,
  eps = 1e-5,
  onStats?: (s: BatchStats) => void,
  impl: 'auto' | 'fused' | 'ops' = 'auto',
): T {
  if (sync) return bnSynced(x, gamma, beta, eps, sync, onStats) as T;
  if (impl === 'auto' && tf.getBackend() === 'torch') return bnTorch(x, gamma, beta, eps, onStats) as T;
  const fused = impl === 'fused' || (impl === 'auto' && jsBackend());
  return (fused ? bnFused : bnOps)(x, gamma, beta, eps, onStats) as T;
}

/** One ATen kernel each way (native_batch_norm and its backward), on channels-last memory. */
function bnTorch(x: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps: number, onStats?: (s: BatchStats) => void): tf.Tensor {
  const count = x.size / x.shape[x.rank - 1];
  const f = tf.customGrad((xIn, g, b, save) => {
    const [y, mean, invstd] = tf.engine().runKernel(ATTFC_BATCH_NORM_TRAIN, { x: xIn as tf.Tensor, gamma: g as tf.Tensor, beta: b as tf.Tensor }, { eps }) as tf.Tensor[];
    // var = 1/invstd^2 - eps, in float64 on the host: C values
    if (onStats) {
      const inv = invstd.dataSync();
      const variance = Float32Array.from(inv, (v) => 1 / (v * v) - eps);
      tf.tidy(() => onStats({ mean: mean as tf.Tensor1D, variance: tf.tensor1d(variance), count }));
    }
    (save as tf.GradSaveFunc)([xIn as tf.Tensor, g as tf.Tensor, mean, invstd]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [xs, gs, m, is] = saved;
        return tf.engine().runKernel(ATTFC_BATCH_NORM_TRAIN_GRAD, { dy: dy as tf.Tensor, x: xs, gamma: gs, mean: m, invstd: is }, { eps }) as tf.Tensor[];
      },
    };
  });
  return f(x, gamma, beta);
}

/**
 * Two passes forward (statistics, then y = x*scale + shift) and two backward (the two channel sums, then
 * dx = A*dy + B*x + C per channel), in JS over the tensors' memory with float64 channel accumulators.
 * The op-by-op version makes ~7 passes each way, every one a separate single-threaded wasm kernel.
 */
function bnFused(x: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps: number, onStats?: (s: BatchStats) => void): tf.Tensor {
  const c = x.shape[x.rank - 1];
  const count = x.size / c;
  const f = tf.customGrad((xIn, g, b, save) => {
    const xi = xIn as tf.Tensor;
    const xs = heapView(xi);
    const sum = new Float64Array(c);
    const sq = new Float64Array(c);
    for (let i = 0; i < xs.length; i += c)
      for (let j = 0; j < c; j++) {
        const v = xs[i + j];
        sum[j] += v;
        sq[j] += v * v;
      }
    const gs = (g as tf.Tensor).dataSync();
    const bs = (b as tf.Tensor).dataSync();
    const mean = new Float64Array(c);
    const variance = new Float64Array(c);
    const rstd = new Float64Array(c);
    const scale = new Float32Array(c);
    const shift = new Float32Array(c);
    for (let j = 0; j < c; j++) {
      mean[j] = sum[j] / count;
      variance[j] = Math.max(0, sq[j] / count - mean[j] * mean[j]);
      rstd[j] = 1 / Math.sqrt(variance[j] + eps);
      scale[j] = gs[j] * rstd[j];
      shift[j] = bs[j] - mean[j] * scale[j];
    }
    const y = new Float32Array(xs.length);
    for (let i = 0; i < xs.length; i += c) for (let j = 0; j < c; j++) y[i + j] = xs[i + j] * scale[j] + shift[j];
    if (onStats)
      tf.tidy(() => onStats({ mean: tf.tensor1d(Float32Array.from(mean)), variance: tf.tensor1d(Float32Array.from(variance)), count }));
    (save as tf.GradSaveFunc)([xi]);
    return {
      value: tf.tensor(y, xi.shape),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const ds = heapView(dy as tf.Tensor);
        const xv = heapView(saved[0]);
        const dbeta = new Float64Array(c);
        const dxc = new Float64Array(c); // sum(dy * (x - mean))
        for (let i = 0; i < ds.length; i += c)
          for (let j = 0; j < c; j++) {
            const d = ds[i + j];
            dbeta[j] += d;
            dxc[j] += d * (xv[i + j] - mean[j]);
          }
        const dgamma = new Float32Array(c);
        const A = new Float32Array(c);
        const B = new Float32Array(c);
        const C = new Float32Array(c);
        for (let j = 0; j < c; j++) {
          const dg = dxc[j] * rstd[j];
          dgamma[j] = dg;
          const gr = gs[j] * rstd[j];
          // dx = gamma*rstd/N * (N*dy - dbeta - xhat*dgamma), xhat = (x-mean)*rstd
          A[j] = gr;
          B[j] = (-gr * rstd[j] * dg) / count;
          C[j] = (-gr * dbeta[j]) / count - B[j] * mean[j];
        }
        const dx = new Float32Array(ds.length);
        for (let i = 0; i < ds.length; i += c) for (let j = 0; j < c; j++) dx[i + j] = A[j] * ds[i + j] + B[j] * xv[i + j] + C[j];
        return [tf.tensor(dx, saved[0].shape), tf.tensor1d(dgamma), tf.tensor1d(Float32Array.from(dbeta))];
      },
    };
  });
  return f(x, gamma, beta);
}

/** The same maths as tensor ops, for backends whose memory JS cannot read cheaply (tfjs-node, GPU). */
function bnOps(x: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps: number, onStats?: (s: BatchStats) => void): tf.Tensor {
  const axes = [...Array(x.rank - 1).keys()];
  const count = x.size / x.shape[x.rank - 1];
  const f = tf.customGrad((xIn, g, b, save) => {
    const xi = xIn as tf.Tensor;
    const mean = tf.mean(xi, axes);
    const xc = tf.sub(xi, mean);
    const variance = tf.mean(tf.square(xc), axes);
    const rstd = tf.rsqrt(tf.add(variance, eps));
    const xhat = tf.mul(xc, rstd);
    if (onStats) onStats({ mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D, count });
    (save as tf.GradSaveFunc)([xhat, rstd, g as tf.Tensor]);
    return {
      value: tf.add(tf.mul(xhat, g as tf.Tensor), b as tf.Tensor),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const d = dy as tf.Tensor;
        const [xh, rs, gm] = saved;
        const dbeta = tf.sum(d, axes);
        const dgamma = tf.sum(tf.mul(d, xh), axes);
        const dx = tf.mul(tf.div(tf.mul(gm, rs), count), tf.sub(tf.sub(tf.mul(d, count), dbeta), tf.mul(xh, dgamma)));
        return [dx, dgamma, dbeta];
      },
    };
  });
  return f(x, gamma, beta);
}

/**
 * Batch norm over the rows of every rank. Forward: each rank's per-channel mean and biased variance and
 * its row count are gathered, and combined as var = sum_r n_r (var_r + (mean_r - mean)^2) / N in float64
 * (no cancellation, unlike sum of squares minus squared sum). Backward: the two channel sums the
 * gradient needs, sum(dy) and sum(dy * xhat), are summed over the ranks; dgamma and dbeta stay this
 * rank's own (the trainer sums parameter gradients over the ranks like any other).
 */
function bnSynced(x: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps: number, s: BatchNormSync, onStats?: (s: BatchStats) => void): tf.Tensor {
  const axes = [...Array(x.rank - 1).keys()];
  const c = x.shape[x.rank - 1];
  const f = tf.customGrad((xIn, g, b, save) => {
    const xi = xIn as tf.Tensor;
    const rows = xi.size / c;
    const local = tf.tidy(() => {
      const m = tf.moments(xi, axes);
      return tf.concat([m.mean, m.variance, tf.tensor1d([rows])]);
    });
    const gathered = s.allGather(local);
    const all = gathered.dataSync() as Float32Array;
    tf.dispose([local, gathered]);
    const ranks = all.length / (2 * c + 1);
    let count = 0;
    const mean = new Float64Array(c);
    for (let r = 0; r < ranks; r++) {
      const o = r * (2 * c + 1);
      const n = all[o + 2 * c];
      count += n;
      for (let j = 0; j < c; j++) mean[j] += n * all[o + j];
    }
    for (let j = 0; j < c; j++) mean[j] /= count;
    const variance = new Float64Array(c);
    for (let r = 0; r < ranks; r++) {
      const o = r * (2 * c + 1);
      const n = all[o + 2 * c];
      for (let j = 0; j < c; j++) {
        const d = all[o + j] - mean[j];
        variance[j] += n * (all[o + c + j] + d * d);
      }
    }
    for (let j = 0; j < c; j++) variance[j] /= count;
    const meanT = tf.tensor1d(Float32Array.from(mean));
    const varT = tf.tensor1d(Float32Array.from(variance));
    const invstd = tf.tensor1d(Float32Array.from(variance, (v) => 1 / Math.sqrt(v + eps)));
    if (onStats) tf.tidy(() => onStats({ mean: meanT, variance: varT, count }));
    const y = tf.batchNorm(xi, meanT, varT, b as tf.Tensor1D, g as tf.Tensor1D, eps);
    (save as tf.GradSaveFunc)([xi, g as tf.Tensor, meanT, invstd]);
    varT.dispose();
    return {
      value: y,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const d = dy as tf.Tensor;
        const [xs, gs, m, is] = saved;
        const xhat = tf.mul(tf.sub(xs, m), is);
        const dbeta = tf.sum(d, axes);
        const dgamma = tf.sum(tf.mul(d, xhat), axes);
        const sums = s.allReduceSum(tf.concat([dbeta, dgamma]));
        const [sumDy, sumDyXhat] = tf.split(sums, 2);
        // dx = gamma * invstd / N * (N dy - sum(dy) - xhat * sum(dy * xhat)), sums over every rank's rows
        const dx = tf.mul(tf.div(tf.mul(gs, is), count), tf.sub(tf.sub(tf.mul(d, count), sumDy), tf.mul(xhat, sumDyXhat)));
        return [dx, dgamma, dbeta];
      },
    };
  });
  return f(x, gamma, beta);
}

/** Inference-mode batch norm from running statistics. */
export function batchNormInfer<T extends tf.Tensor>(
  x: T,
  gamma: tf.Tensor1D,
  beta: tf.Tensor1D,
  movingMean: tf.Tensor1D,
  movingVar: tf.Tensor1D,
  eps = 1e-5,
): T {
  return tf.batchNorm(x, movingMean, movingVar, beta, gamma, eps) as T;
}
