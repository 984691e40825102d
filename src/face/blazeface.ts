// BlazeFace (MediaPipe's short-range-to-back-camera SSD face detector, 256x256 input, 896 anchors) as
// shipped in @vladmandic/human's models/blazeface.json: the anchor grid, the decoding of its raw outputs
// into boxes and six keypoints, and weighted non-maximum suppression. Imports only types and pure
// modules, so the browser page loads this very file (compiled); it must never read files or use Node.
import type * as TF from '@tensorflow/tfjs-core';
import type { GraphModel } from '@tensorflow/tfjs-converter';

/** The detector's input side in pixels. */
export const BLAZEFACE_SIZE = 256;

/** Output nodes of the graph: regressors and scores of the 16x16 grid (2 anchors a cell), then of the 8x8 grid (6 a cell). */
const OUTPUTS = ['Identity_2:0', 'Identity:0', 'Identity_3:0', 'Identity_1:0'];
const GRIDS: readonly { cells: number; perCell: number }[] = [
  { cells: 16, perCell: 2 },
  { cells: 8, perCell: 6 },
];
const VALUES = 16; // box centre x, y, width, height, then six (x, y) keypoints

/**
 * One detection in the detector's input frame (pixels of the 256x256 input, continuous coordinates:
 * 0 is the left edge). Keypoints: the two eyes (image left first for an upright face), nose tip,
 * mouth centre, the two ear tragions.
 */
export interface RawDetection {
  score: number;
  /** x, y of the top-left corner, width, height. */
  box: [number, number, number, number];
  keypoints: number[]; // 12 values: x0, y0, ..., x5, y5
}

/** Anchor centres in input pixels, in the order of the model's concatenated outputs (fixed anchor size). */
function anchorCentres(): Float32Array {
  const out: number[] = [];
  for (const { cells, perCell } of GRIDS)
    for (let y = 0; y < cells; y++)
      for (let x = 0; x < cells; x++)
        for (let k = 0; k < perCell; k++) out.push(((x + 0.5) / cells) * BLAZEFACE_SIZE, ((y + 0.5) / cells) * BLAZEFACE_SIZE);
  return Float32Array.from(out);
}
const ANCHORS = anchorCentres();

const sigmoid = (x: number) => 1 / (1 + Math.exp(-Math.max(-100, Math.min(100, x))));

/** Decodes raw regressors [896 x 16] and logits [896] into detections scoring at least `minScore`. */
export function decodeDetections(regressors: ArrayLike<number>, logits: ArrayLike<number>, minScore: number): RawDetection[] {
  const out: RawDetection[] = [];
  for (let a = 0; a < logits.length; a++) {
    const score = sigmoid(logits[a]);
    if (score < minScore) continue;
    const r = a * VALUES;
    const ax = ANCHORS[2 * a];
    const ay = ANCHORS[2 * a + 1];
    const w = regressors[r + 2];
    const h = regressors[r + 3];
    if (!(w > 0 && h > 0)) continue;
    const keypoints: number[] = [];
    for (let k = 0; k < 6; k++) keypoints.push(ax + regressors[r + 4 + 2 * k], ay + regressors[r + 5 + 2 * k]);
    out.push({ score, box: [ax + regressors[r] - w / 2, ay + regressors[r + 1] - h / 2, w, h], keypoints });
  }
  return out;
}

/** Intersection over union of two [x, y, w, h] boxes, and the intersection over the smaller box. */
export function boxOverlap(a: readonly number[], b: readonly number[]): { iou: number; ioMin: number } {
  const ix = Math.max(0, Math.min(a[0] + a[2], b[0] + b[2]) - Math.max(a[0], b[0]));
  const iy = Math.max(0, Math.min(a[1] + a[3], b[1] + b[3]) - Math.max(a[1], b[1]));
  const inter = ix * iy;
  const aa = a[2] * a[3];
  const bb = b[2] * b[3];
  return { iou: inter / Math.max(aa + bb - inter, 1e-9), ioMin: inter / Math.max(Math.min(aa, bb), 1e-9) };
}

/**
 * Weighted non-maximum suppression (MediaPipe's "weighted" overlap handling): the best-scoring
 * detection takes every remaining one that overlaps it by IoU >= `iou`, and its box and keypoints
 * become the score-weighted mean of that cluster (its score stays the best one's). Steadier boxes than
 * plain NMS, since neighbouring anchors vote.
 */
export function weightedNms(dets: readonly RawDetection[], iou = 0.3): RawDetection[] {
  const rest = [...dets].sort((a, b) => b.score - a.score);
  const out: RawDetection[] = [];
  while (rest.length) {
    const best = rest[0];
    const cluster = rest.filter((d) => boxOverlap(best.box, d.box).iou >= iou);
    const remaining = rest.filter((d) => boxOverlap(best.box, d.box).iou < iou);
    let wsum = 0;
    const box = [0, 0, 0, 0];
    const kps = new Array<number>(best.keypoints.length).fill(0);
    for (const d of cluster) {
      wsum += d.score;
      d.box.forEach((v, i) => (box[i] += v * d.score));
      d.keypoints.forEach((v, i) => (kps[i] += v * d.score));
    }
    out.push({ score: best.score, box: box.map((v) => v / wsum) as RawDetection['box'], keypoints: kps.map((v) => v / wsum) });
    rest.splice(0, rest.length, ...remaining);
  }
  return out;
}

/**
 * Runs the detector on one 256x256 RGB window (bytes, row-major) and returns its detections (before
 * suppression) in the window's pixels. Inputs are scaled to [-1, 1] as the model was trained.
 */
export async function runBlazeFace(tf: typeof TF, model: GraphModel, rgb: Uint8Array, minScore: number): Promise<RawDetection[]> {
  const n = BLAZEFACE_SIZE * BLAZEFACE_SIZE * 3;
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = rgb[i] / 127.5 - 1;
  const outputs = tf.tidy(() => model.execute(tf.tensor4d(x, [1, BLAZEFACE_SIZE, BLAZEFACE_SIZE, 3]), OUTPUTS) as TF.Tensor[]);
  try {
    const [reg16, cls16, reg8, cls8] = await Promise.all(outputs.map((t) => t.data() as Promise<Float32Array>));
    const regressors = new Float32Array(reg16.length + reg8.length);
    regressors.set(reg16);
    regressors.set(reg8, reg16.length);
    const logits = new Float32Array(cls16.length + cls8.length);
    logits.set(cls16);
    logits.set(cls8, cls16.length);
    return decodeDetections(regressors, logits, minScore);
  } finally {
    tf.dispose(outputs);
  }
}
