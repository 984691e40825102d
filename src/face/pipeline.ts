// Photo -> faces: BlazeFace over a pyramid of square windows (the whole image padded, letterboxed, then
// overlapping tiles for small faces), suppression across windows, then two FaceMesh passes per face
// (the crop levelled by the detector's eyes, then re-centred and levelled by the first mesh) and the
// five ArcFace points. Every resampling is the deterministic bilinear warp in align.ts, so Node and
// the browser feed the networks the same bytes. Takes tf and the models as arguments and imports only
// pure modules: the browser page loads this very file (compiled). It must never read files or use Node.
import type * as TF from '@tensorflow/tfjs-core';
import type { GraphModel } from '@tensorflow/tfjs-converter';
import { invertAffine, warpAffineBilinear, type Affine } from './align.js';
import { BLAZEFACE_SIZE, boxOverlap, runBlazeFace, weightedNms, type RawDetection } from './blazeface.js';
import { EYE_OUTER_CORNERS, FACEMESH_SIZE, fivePointsFromMesh, runFaceMesh } from './facemesh.js';

/** The two graph models and the TensorFlow.js instance that runs them. */
export interface FaceModels {
  tf: typeof TF;
  detector: GraphModel;
  mesh: GraphModel;
}

/** Pixels as the pipeline reads them: RGB, row-major, 3 bytes a pixel. */
export interface RgbPixels {
  width: number;
  height: number;
  data: Uint8Array;
}

/**
 * One face, in the image's pixel coordinates (OpenCV's and insightface's convention: the centre of the
 * top-left pixel is (0, 0)).
 */
export interface DetectedFace {
  /** [x, y, width, height] of the detector's box. */
  box: [number, number, number, number];
  /** The detector's confidence, 0..1. */
  score: number;
  /** The ArcFace points in the template's order: right eye, left eye, nose tip, right and left mouth corners (image left to right). */
  landmarks5: [number, number][];
  /** The landmark model's confidence that its crop holds a face, 0..1. */
  meshScore: number;
}

export interface DetectOptions {
  /** Lowest detector score kept (default 0.5). */
  minScore?: number;
  /** Smallest face side searched for, in pixels (default: 5% of the image's longer side, at least 20). */
  minFaceSize?: number;
  /** Lowest landmark-model confidence kept (default 0.5): drops detector hits that are no face. */
  minMeshScore?: number;
}

/** A square region of the image in continuous coordinates (0 is the left edge of the first pixel). */
export interface Window {
  x0: number;
  y0: number;
  side: number;
}

/**
 * Smallest face BlazeFace finds, as a fraction of its window: AT&T faces pasted into one 256x256 window
 * were all found (8 of 8) down to a box of 4.6% of the window, 7 of 8 at 3.5%, and up to 75% (a face
 * filling the window). Tiles are added until this fraction of the finest is below the smallest face
 * asked for.
 */
export const SMALLEST_FACE_FRACTION = 0.05;

/** The default smallest face: 5% of the longer side, at least 20 pixels. */
export function defaultMinFaceSize(width: number, height: number): number {
  return Math.max(20, 0.05 * Math.max(width, height));
}

function tileOrigins(extent: number, side: number): number[] {
  if (side >= extent) return [(extent - side) / 2];
  const n = Math.ceil((extent - side) / (side / 2)) + 1;
  return Array.from({ length: n }, (_, i) => (i * (extent - side)) / (n - 1));
}

/**
 * The windows searched, coarse to fine: the image centred in a square twice its longer side (faces
 * that fill the frame, as in cropped face sets, are found only with room around them), the letterboxed
 * image, then tiles of half the previous side overlapping by half, while the previous level could miss
 * faces of `minFace` pixels and tiles stay at least half the detector's input.
 */
export function planWindows(width: number, height: number, minFace: number): Window[][] {
  const long = Math.max(width, height);
  const levels: Window[][] = [
    [{ x0: width / 2 - long, y0: height / 2 - long, side: 2 * long }],
    [{ x0: (width - long) / 2, y0: (height - long) / 2, side: long }],
  ];
  for (let side = long / 2; side >= BLAZEFACE_SIZE / 2 && 2 * side * SMALLEST_FACE_FRACTION > minFace; side /= 2)
    levels.push(tileOrigins(height, side).flatMap((y0) => tileOrigins(width, side).map((x0) => ({ x0, y0, side }))));
  return levels;
}

/** Averages factor x factor blocks (the last row and column average what they have): an antialiased shrink. */
export function shrinkByBlocks(img: RgbPixels, factor: number): RgbPixels {
  const width = Math.ceil(img.width / factor);
  const height = Math.ceil(img.height / factor);
  const sums = new Float64Array(width * height * 3);
  const counts = new Float64Array(width * height);
  for (let y = 0; y < img.height; y++) {
    const row = Math.floor(y / factor) * width;
    for (let x = 0; x < img.width; x++) {
      const o = row + Math.floor(x / factor);
      const p = (y * img.width + x) * 3;
      sums[3 * o] += img.data[p];
      sums[3 * o + 1] += img.data[p + 1];
      sums[3 * o + 2] += img.data[p + 2];
      counts[o]++;
    }
  }
  const data = new Uint8Array(width * height * 3);
  for (let o = 0; o < width * height; o++) for (let c = 0; c < 3; c++) data[3 * o + c] = Math.floor(sums[3 * o + c] / counts[o] + 0.5);
  return { width, height, data };
}

/**
 * The affine map from a size x size crop's pixels to the image's pixels (both with pixel centres at
 * integers) for a square of `side` image pixels centred on (cx, cy) and rotated by `angle` radians.
 */
export function cropToImage(cx: number, cy: number, side: number, angle: number, size: number): Affine {
  const s = side / size;
  const c = s * Math.cos(angle);
  const n = s * Math.sin(angle);
  const h = (size - 1) / 2;
  return [c, -n, cx - c * h + n * h, n, c, cy - n * h - c * h];
}

function applyTo(m: Affine, flat: ArrayLike<number>): number[] {
  const out: number[] = [];
  for (let i = 0; i < flat.length; i += 2) out.push(m[0] * flat[i] + m[1] * flat[i + 1] + m[2], m[3] * flat[i] + m[4] * flat[i + 1] + m[5]);
  return out;
}

/** Detector hits of one window, in image pixel coordinates. */
async function detectInWindow(models: FaceModels, img: RgbPixels, w: Window, minScore: number): Promise<RawDetection[]> {
  const s = w.side / BLAZEFACE_SIZE;
  // window pixel u <-> image pixel x: x = x0 + (u + 0.5) s - 0.5 (warpAffineBilinear wants image -> window)
  const toImage: Affine = [s, 0, w.x0 + 0.5 * s - 0.5, 0, s, w.y0 + 0.5 * s - 0.5];
  const crop = warpAffineBilinear(img.data, img.width, img.height, invertAffine(toImage), BLAZEFACE_SIZE, BLAZEFACE_SIZE, 3);
  const hits = weightedNms(await runBlazeFace(models.tf, models.detector, crop, minScore));
  // the network's outputs are continuous window coordinates: pixel centre = value - 0.5
  return hits.map((d) => {
    const [x, y] = applyTo(toImage, [d.box[0] - 0.5, d.box[1] - 0.5]);
    return { score: d.score, box: [x, y, d.box[2] * s, d.box[3] * s], keypoints: applyTo(toImage, d.keypoints.map((v) => v - 0.5)) };
  });
}

/** Runs the detector over every window and keeps the best hit per face (IoU >= 0.3, or one box mostly inside another). */
export async function detectBoxes(models: FaceModels, img: RgbPixels, minScore: number, minFace: number): Promise<RawDetection[]> {
  const all: RawDetection[] = [];
  for (const level of planWindows(img.width, img.height, minFace)) {
    const factor = Math.floor(level[0].side / BLAZEFACE_SIZE);
    // shrink once per level so the bilinear warp never skips pixels (no aliasing), then scale windows to match
    const source = factor >= 2 ? shrinkByBlocks(img, factor) : img;
    const k = factor >= 2 ? factor : 1;
    for (const w of level) {
      const hits = await detectInWindow(models, source, { x0: w.x0 / k, y0: w.y0 / k, side: w.side / k }, minScore);
      for (const d of hits)
        all.push({
          score: d.score,
          box: [(d.box[0] + 0.5) * k - 0.5, (d.box[1] + 0.5) * k - 0.5, d.box[2] * k, d.box[3] * k],
          keypoints: d.keypoints.map((v) => (v + 0.5) * k - 0.5),
        });
    }
  }
  all.sort((a, b) => b.score - a.score);
  const kept: RawDetection[] = [];
  for (const d of all) {
    if (kept.some((k) => {
      const o = boxOverlap(k.box, d.box);
      return o.iou >= 0.3 || o.ioMin >= 0.6;
    }))
      continue;
    kept.push(d);
  }
  return kept;
}

/** Mesh points in image coordinates for the square crop (centre, side, angle), and the mesh's face score. */
async function meshAt(models: FaceModels, img: RgbPixels, cx: number, cy: number, side: number, angle: number) {
  const toImage = cropToImage(cx, cy, side, angle, FACEMESH_SIZE);
  const crop = warpAffineBilinear(img.data, img.width, img.height, invertAffine(toImage), FACEMESH_SIZE, FACEMESH_SIZE, 3);
  const mesh = await runFaceMesh(models.tf, models.mesh, crop);
  return { points: applyTo(toImage, Array.from(mesh.points, (v) => v - 0.5)), faceScore: mesh.faceScore };
}

/** The level square around mesh points: centred on their extent in the face's own frame, 1.5x its longer side. */
function roiFromMesh(points: number[]): { cx: number; cy: number; side: number; angle: number } {
  const r = EYE_OUTER_CORNERS.right;
  const l = EYE_OUTER_CORNERS.left;
  const angle = Math.atan2(points[2 * l + 1] - points[2 * r + 1], points[2 * l] - points[2 * r]);
  const c = Math.cos(angle);
  const s = Math.sin(angle);
  let minU = Infinity, maxU = -Infinity, minV = Infinity, maxV = -Infinity;
  for (let i = 0; i < points.length; i += 2) {
    const u = c * points[i] + s * points[i + 1];
    const v = -s * points[i] + c * points[i + 1];
    minU = Math.min(minU, u); maxU = Math.max(maxU, u);
    minV = Math.min(minV, v); maxV = Math.max(maxV, v);
  }
  const u = (minU + maxU) / 2;
  const v = (minV + maxV) / 2;
  return { cx: c * u - s * v, cy: s * u + c * v, side: 1.5 * Math.max(maxU - minU, maxV - minV), angle };
}

/** Landmarks for one detector hit: the crop levelled by the detector's eyes, then by the first mesh. */
export async function landmarksFor(models: FaceModels, img: RgbPixels, d: RawDetection): Promise<{ landmarks5: number[]; meshScore: number }> {
  const k = d.keypoints;
  const angle = Math.atan2(k[3] - k[1], k[2] - k[0]);
  const first = await meshAt(models, img, d.box[0] + d.box[2] / 2, d.box[1] + d.box[3] / 2, 1.5 * Math.max(d.box[2], d.box[3]), angle);
  const roi = roiFromMesh(first.points);
  const second = await meshAt(models, img, roi.cx, roi.cy, roi.side, roi.angle);
  return { landmarks5: fivePointsFromMesh(second.points), meshScore: second.faceScore };
}

/** Every face in an image, best detector score first. */
export async function detectFacesInPixels(models: FaceModels, img: RgbPixels, options: DetectOptions = {}): Promise<DetectedFace[]> {
  const minScore = options.minScore ?? 0.5;
  const minMeshScore = options.minMeshScore ?? 0.5;
  const minFace = options.minFaceSize ?? defaultMinFaceSize(img.width, img.height);
  const faces: DetectedFace[] = [];
  for (const d of await detectBoxes(models, img, minScore, minFace)) {
    const { landmarks5, meshScore } = await landmarksFor(models, img, d);
    if (meshScore < minMeshScore) continue;
    const pairs = Array.from({ length: 5 }, (_, i) => [landmarks5[2 * i], landmarks5[2 * i + 1]] as [number, number]);
    faces.push({ box: d.box, score: d.score, landmarks5: pairs, meshScore });
  }
  return faces;
}
