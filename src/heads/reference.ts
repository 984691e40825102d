// Plain-loop float64 reference implementations of the FC heads' maths (no tf), so tests can check the
// tensor code against something written independently and in the most direct way.
import type { MarginOptions } from './margin.js';
import { EXACT_MIN_SIN_THETA } from './margin.js';
import type { SgdSettings } from './types.js';

function clamp1(c: number): number {
  return Math.min(1, Math.max(-1, c));
}

/** margin(c) before scaling: cos(m1*acos(c) + m2) - m3, with the exact mode's th/mm fallback. */
export function refMarginValue(cos: number, opts: MarginOptions): number {
  const c = clamp1(cos);
  const theta = Math.acos(c);
  const angle = opts.m1 * theta + opts.m2;
  if (opts.gradient === 'exact' && angle > Math.PI) return c - Math.sin(Math.PI - opts.m2) * opts.m2 - opts.m3;
  return Math.cos(angle) - opts.m3;
}

/** d margin / dc as the backward pass uses it: 1 for straight-through, the true derivative for exact. */
export function refMarginDerivative(cos: number, opts: MarginOptions): number {
  if (opts.gradient === 'straight-through') return 1;
  const c = clamp1(cos);
  const theta = Math.acos(c);
  const angle = opts.m1 * theta + opts.m2;
  if (angle > Math.PI) return 1;
  if (opts.m1 === 1 && opts.m2 === 0) return 1;
  const sinTheta = Math.max(Math.sqrt(Math.max(0, 1 - c * c)), EXACT_MIN_SIN_THETA);
  // m1 = 1: sin(theta + m) / sin(theta) expanded, so the sin(theta) floor acts as in the tensor code
  if (opts.m1 === 1) return Math.cos(opts.m2) + (Math.sin(opts.m2) * c) / sinTheta;
  return (opts.m1 * Math.sin(angle)) / sinTheta;
}

export interface RefSoftmaxResult {
  loss: number;
  /** Scaled logits after the margin [B][C]. */
  logits: number[][];
  /** dLoss/dcos [B][C] (zero where cos was clamped). */
  dCos: number[][];
}

/** Margin softmax cross-entropy over a cosine matrix; target -1 rows are skipped and not counted. */
export function refMarginSoftmax(cos: number[][], target: number[], opts: MarginOptions): RefSoftmaxResult {
  const rows = cos.length;
  let counted = 0;
  for (const t of target) if (t >= 0) counted++;
  const denom = Math.max(counted, 1);
  let loss = 0;
  const logits: number[][] = [];
  const dCos: number[][] = [];
  for (let i = 0; i < rows; i++) {
    const t = target[i];
    const row = cos[i].map((c, j) => opts.s * (j === t ? refMarginValue(c, opts) : clamp1(c)));
    logits.push(row);
    const grad = new Array<number>(row.length).fill(0);
    if (t >= 0) {
      let max = -Infinity;
      for (const z of row) max = Math.max(max, z);
      let sum = 0;
      for (const z of row) sum += Math.exp(z - max);
      loss += -(row[t] - max - Math.log(sum)) / denom;
      for (let j = 0; j < row.length; j++) {
        const p = Math.exp(row[j] - max) / sum;
        const dLogit = (p - (j === t ? 1 : 0)) / denom;
        const inside = cos[i][j] >= -1 && cos[i][j] <= 1;
        const dEdit = j === t ? refMarginDerivative(cos[i][j], opts) : 1;
        grad[j] = inside ? dLogit * opts.s * dEdit : 0;
      }
    }
    dCos.push(grad);
  }
  return { loss, logits, dCos };
}

export interface RefFcResult extends RefSoftmaxResult {
  cos: number[][];
  /** dLoss/d embedding [B][D]. */
  dEmbeddings: number[][];
  /** dLoss/d class centre [N][D] (one row per class). */
  dCentres: number[][];
}

function norm(v: number[]): number {
  let s = 0;
  for (const x of v) s += x * x;
  return Math.max(Math.sqrt(s), 1e-12);
}

/** d/dv of a function of v/|v|, given the gradient g w.r.t. v/|v|: (g - u (u.g)) / |v|. */
function throughNormalize(v: number[], g: number[]): number[] {
  const n = norm(v);
  const u = v.map((x) => x / n);
  let dot = 0;
  for (let d = 0; d < v.length; d++) dot += u[d] * g[d];
  return g.map((x, d) => (x - u[d] * dot) / n);
}

/**
 * Full FC head: loss of the margin softmax over cos(x_i, w_c) with label targets, and the gradients
 * w.r.t. the raw embeddings [B][D] and the raw class centres [N][D].
 */
export function refFcLoss(embeddings: number[][], centres: number[][], labels: number[], opts: MarginOptions): RefFcResult {
  const xs = embeddings.map((x) => x.map((v) => v / norm(x)));
  const ws = centres.map((w) => w.map((v) => v / norm(w)));
  const cos = xs.map((x) => ws.map((w) => x.reduce((acc, v, d) => acc + v * w[d], 0)));
  const soft = refMarginSoftmax(cos, labels, opts);
  const dim = embeddings[0].length;
  const dEmbeddings = embeddings.map((x, i) => {
    const g = new Array<number>(dim).fill(0);
    for (let c = 0; c < centres.length; c++) for (let d = 0; d < dim; d++) g[d] += soft.dCos[i][c] * ws[c][d];
    return throughNormalize(x, g);
  });
  const dCentres = centres.map((w, c) => {
    const g = new Array<number>(dim).fill(0);
    for (let i = 0; i < embeddings.length; i++) for (let d = 0; d < dim; d++) g[d] += soft.dCos[i][c] * xs[i][d];
    return throughNormalize(w, g);
  });
  return { ...soft, cos, dEmbeddings, dCentres };
}

/** One PyTorch SGD step in place: v = mu*v + (g + wd*w); w -= lr*v. */
export function refSgdMomentumStep(w: number[], v: number[], g: number[], sgd: SgdSettings): void {
  for (let i = 0; i < w.length; i++) {
    v[i] = sgd.momentum * v[i] + (g[i] + sgd.weightDecay * w[i]);
    w[i] -= sgd.lr * v[i];
  }
}
