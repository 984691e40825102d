// Margin softmax on cosine logits (ArcFace, CosFace and their combination), shared by every head.
//
// Combined margin (insightface arcface_torch CombinedMarginLoss): the positive logit cos(theta) becomes
// cos(m1*theta + m2) - m3, every logit is first clamped to [-1, 1] and finally multiplied by s.
// Two gradient modes:
//  - 'straight-through' is what arcface_torch (and the AttFC reference) do today: the margin edit runs
//    under no_grad, so backward treats it as the identity and dL/dcos = s * (softmax - onehot) on the
//    target too. Like that reference it has no fallback: cos(theta + m) is used for every theta.
//  - 'exact' differentiates cos(m1*theta + m2) and, like the older arcface_torch ArcFace (easy_margin
//    False), switches to the linear fallback cos - m2*sin(m2) where m1*theta + m2 > pi (the reference's
//    "th = cos(pi - m)" / "mm = sin(pi - m) * m" pair, generalised to m1 via th = cos((pi - m2) / m1)).
import * as tf from '@tensorflow/tfjs-core';
import { heapView } from '../engine/heapView.js';
import { AttfcError } from '../errors.js';

export interface MarginOptions {
  /** Logit scale. */
  s: number;
  /** Multiplicative angular margin (SphereFace); 1 for ArcFace and CosFace. */
  m1: number;
  /** Additive angular margin in radians (ArcFace). */
  m2: number;
  /** Additive cosine margin (CosFace). */
  m3: number;
  gradient: 'straight-through' | 'exact';
}

/** ArcFace as trained by arcface_torch and AttFC: s 64, m 0.5, straight-through gradient. */
export const ARCFACE: MarginOptions = Object.freeze({ s: 64, m1: 1, m2: 0.5, m3: 0, gradient: 'straight-through' as const });
/** CosFace: s 64, m 0.4 (its edit is a shift, so both gradient modes agree). */
export const COSFACE: MarginOptions = Object.freeze({ s: 64, m1: 1, m2: 0, m3: 0.4, gradient: 'straight-through' as const });

/**
 * Floor on sin(theta) in the exact derivative, so that it stays finite at cos = +-1 (where
 * d/dc cos(theta + m) diverges); only cosines within ~5e-7 of +-1 are affected.
 */
export const EXACT_MIN_SIN_THETA = 1e-3;

/** Throws an AttfcError naming the first invalid margin setting. */
export function validateMargin(opts: MarginOptions): void {
  const bad = (key: string, want: string, got: unknown) => {
    throw new AttfcError(`margin: ${key} must be ${want} (got ${String(got)})`);
  };
  if (!(Number.isFinite(opts.s) && opts.s > 0)) bad('s', 'a number > 0', opts.s);
  if (!(Number.isFinite(opts.m1) && opts.m1 > 0)) bad('m1', 'a number > 0', opts.m1);
  if (!(Number.isFinite(opts.m2) && opts.m2 >= 0 && opts.m2 < Math.PI)) bad('m2', 'a number in [0, pi)', opts.m2);
  if (!(Number.isFinite(opts.m3) && opts.m3 >= 0)) bad('m3', 'a number >= 0', opts.m3);
  if (opts.gradient !== 'straight-through' && opts.gradient !== 'exact') bad('gradient', "'straight-through' or 'exact'", opts.gradient);
}

/**
 * Cosine at or below which the exact mode uses the linear fallback (m1*theta + m2 >= pi there);
 * -Infinity when m1*theta + m2 never exceeds pi.
 */
export function fallbackThreshold(opts: MarginOptions): number {
  const thetaMax = (Math.PI - opts.m2) / opts.m1;
  return thetaMax >= Math.PI ? -Infinity : Math.cos(thetaMax);
}

/** cos(m1*acos(c) + m2) for c already in [-1, 1]; closed form when m1 = 1 (exact when m2 = 0). */
function angularMargin(c: tf.Tensor, m1: number, m2: number): tf.Tensor {
  if (m1 === 1) {
    if (m2 === 0) return tf.clone(c);
    const sinTheta = tf.sqrt(tf.relu(tf.sub(1, tf.square(c))));
    return tf.sub(tf.mul(c, Math.cos(m2)), tf.mul(sinTheta, Math.sin(m2)));
  }
  return tf.cos(tf.add(tf.mul(tf.acos(c), m1), m2));
}

/** margin(c) before scaling, for c in [-1, 1]: the forward value of either mode. */
function marginValue(c: tf.Tensor, opts: MarginOptions): tf.Tensor {
  let v = angularMargin(c, opts.m1, opts.m2);
  if (opts.gradient === 'exact') {
    const th = fallbackThreshold(opts);
    if (th > -Infinity) {
      const mm = Math.sin(Math.PI - opts.m2) * opts.m2;
      v = tf.where(tf.greater(c, th), v, tf.sub(c, mm));
    }
  }
  return opts.m3 === 0 ? v : tf.sub(v, opts.m3);
}

/** d margin / dc of the exact mode for c in [-1, 1]. */
function exactDerivative(c: tf.Tensor, opts: MarginOptions): tf.Tensor {
  const { m1, m2 } = opts;
  if (m1 === 1 && m2 === 0) return tf.onesLike(c);
  const sinTheta = tf.maximum(tf.sqrt(tf.relu(tf.sub(1, tf.square(c)))), EXACT_MIN_SIN_THETA);
  // m1 = 1: d/dc cos(theta + m) = cos m + sin m * c / sin(theta)
  // general: m1 * sin(m1*theta + m2) / sin(theta)
  const d =
    m1 === 1
      ? tf.add(tf.mul(tf.div(c, sinTheta), Math.sin(m2)), Math.cos(m2))
      : tf.div(tf.mul(tf.sin(tf.add(tf.mul(tf.acos(c), m1), m2)), m1), sinTheta);
  const th = fallbackThreshold(opts);
  return th > -Infinity ? tf.where(tf.greater(c, th), d, tf.onesLike(c)) : d;
}

function marginOp(opts: MarginOptions): (c: tf.Tensor1D) => tf.Tensor1D {
  return tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const c = args[0] as tf.Tensor;
    const save = args[1] as tf.GradSaveFunc;
    save([c]);
    return {
      value: marginValue(c, opts),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        opts.gradient === 'exact' ? tf.mul(dy, exactDerivative(saved[0], opts)) : tf.clone(dy),
    };
  }) as unknown as (c: tf.Tensor1D) => tf.Tensor1D;
}

/**
 * Margin applied to target cosines only: input cos of each sample's positive [B] (any values; clamped
 * to [-1,1]), returns the scaled positive logit s * margin(cos) [B].
 */
export function marginTargetLogit(cosTarget: tf.Tensor1D, opts: MarginOptions): tf.Tensor1D {
  validateMargin(opts);
  return tf.tidy(() => tf.mul(marginOp(opts)(tf.clipByValue(cosTarget, -1, 1)), opts.s));
}

/**
 * Full margin softmax: cos [B,C], target column per row (int32 [B], -1 = no positive in these
 * columns), returns scaled logits [B,C] (all columns clamped to [-1,1] then *s, margin on the target
 * column).
 */
export function marginLogits(cos: tf.Tensor2D, target: tf.Tensor1D, opts: MarginOptions): tf.Tensor2D {
  validateMargin(opts);
  const [b, c] = cos.shape;
  return tf.tidy(() => {
    const clamped = tf.clipByValue(cos, -1, 1);
    const onehot = targetOneHot(target, c);
    const cosTarget = tf.sum(tf.mul(clamped, onehot), 1) as tf.Tensor1D;
    const positive = tf.reshape(marginTargetLogit(cosTarget, opts), [b, 1]);
    // masks instead of a scatter: exact (x*1, x*0) and both branches differentiate with broadcasting
    const others = tf.mul(tf.mul(clamped, tf.sub(1, onehot)), opts.s);
    return tf.add(others, tf.mul(onehot, positive)) as tf.Tensor2D;
  });
}

/**
 * Mean softmax cross-entropy of marginLogits with the target column. Rows whose target is -1 add
 * nothing and are left out of the mean (0 when no row has a target).
 */
export function marginSoftmaxLoss(cos: tf.Tensor2D, target: tf.Tensor1D, opts: MarginOptions): tf.Scalar {
  return tf.tidy(() => {
    const logits = marginLogits(cos, target, opts);
    const onehot = targetOneHot(target, cos.shape[1]);
    const nll = tf.neg(tf.sum(tf.mul(tf.logSoftmax(logits), onehot)));
    return tf.div(nll, tf.maximum(tf.sum(onehot), 1)) as tf.Scalar;
  });
}

/** One-hot float32 rows of int32 targets (-1: an all-zero row), `columns` wide. */
export function targetOneHot(target: tf.Tensor1D, columns: number): tf.Tensor2D {
  if (target.dtype !== 'int32') throw new Error(`margin: target must be int32, got ${target.dtype}`);
  // int32 then cast: the wasm OneHot kernel (4.22) ignores the dtype attribute and writes int32 bits.
  // oneHot needs depth >= 2; a single column is padded and sliced back.
  const onehot = tf.cast(tf.oneHot(target, Math.max(columns, 2)), 'float32');
  return (columns >= 2 ? onehot : tf.slice(onehot, [0, 0], [-1, 1])) as tf.Tensor2D;
}

// ---- cosine helpers shared by the FC heads ----

/**
 * x / max(||x||, 1e-12) along `axis` (PyTorch F.normalize), with a finite gradient at x = 0.
 * Closed-form backward dx = (dy - n * sum(dy * n)) / ||x||: autodiff of the op chain keeps about ten
 * temporaries the size of x alive, which for a class table W [N, D] decided how large N could get.
 * Rows of a 2-D tensor (axis 1) on wasm/cpu run as fused JS passes that allocate only the output.
 */
export function l2Normalize<T extends tf.Tensor>(x: T, axis: number): T {
  const rowsInJs = x.rank === 2 && (axis === 1 || axis === -1) && (tf.getBackend() === 'wasm' || tf.getBackend() === 'cpu');
  const f = tf.customGrad((xIn, save) => {
    const xi = xIn as tf.Tensor;
    if (rowsInJs) {
      const [rows, d] = xi.shape;
      const xs = heapView(xi);
      const out = new Float32Array(xs.length);
      const inv = new Float32Array(rows);
      for (let r = 0; r < rows; r++) {
        let ss = 0;
        const o = r * d;
        for (let j = 0; j < d; j++) ss += xs[o + j] * xs[o + j];
        const k = 1 / Math.sqrt(Math.max(ss, 1e-24));
        inv[r] = k;
        for (let j = 0; j < d; j++) out[o + j] = xs[o + j] * k;
      }
      const n = tf.tensor(out, xi.shape);
      (save as tf.GradSaveFunc)([n]);
      return {
        value: n,
        gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
          const ds = heapView(dy as tf.Tensor);
          const ns = heapView(saved[0]);
          const dx = new Float32Array(ds.length);
          for (let r = 0; r < rows; r++) {
            const o = r * d;
            let dot = 0;
            for (let j = 0; j < d; j++) dot += ds[o + j] * ns[o + j];
            const k = inv[r];
            for (let j = 0; j < d; j++) dx[o + j] = (ds[o + j] - ns[o + j] * dot) * k;
          }
          return [tf.tensor(dx, saved[0].shape)];
        },
      };
    }
    const inv = tf.rsqrt(tf.maximum(tf.sum(tf.square(xi), axis, true), 1e-24));
    const n = tf.mul(xi, inv);
    (save as tf.GradSaveFunc)([n, inv]);
    return {
      value: n,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) =>
        tf.tidy(() => {
          const [nn, k] = saved;
          const d = dy as tf.Tensor;
          return [tf.mul(tf.sub(d, tf.mul(nn, tf.sum(tf.mul(d, nn), axis, true))), k)];
        }),
    };
  });
  return f(x) as T;
}

/**
 * Cosines [B, C] between the rows of x [B, D] and the class centres, the rows of w [C, D]. Computed as
 * (w_hat @ x_hat^T)^T so that neither pass transposes or reduces over the big table on wasm: its
 * normalisation is a last-axis sum, and both matmul gradients only transpose [B, *] operands.
 */
export function cosineToCentres(x: tf.Tensor2D, w: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => tf.transpose(tf.matMul(l2Normalize(w, 1), l2Normalize(x, 1), false, true)));
}

/**
 * Diagnostics of a cosine matrix [B, C] against int32 targets [B] (all >= 0): [mean cosine to the
 * own column, mean over rows of the largest cosine to any other column]. Needs C >= 2.
 */
export function cosineStats(cos: tf.Tensor2D, target: tf.Tensor1D): tf.Tensor1D {
  return tf.tidy(() => {
    const onehot = targetOneHot(target, cos.shape[1]);
    const positive = tf.mean(tf.sum(tf.mul(cos, onehot), 1));
    // cosines are >= -1 (up to rounding): pushing the own column down by 4 removes it from the max
    const hardestNegative = tf.mean(tf.max(tf.sub(cos, tf.mul(onehot, 4)), 1));
    return tf.stack([positive, hardestNegative]) as tf.Tensor1D;
  });
}
