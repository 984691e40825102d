// Face alignment as insightface's IJB script does it: a least-squares similarity transform from the
// 5 landmarks to the ArcFace template (skimage SimilarityTransform.estimate), then cv2.warpAffine with
// bilinear sampling and a black border, reproduced in OpenCV's fixed-point arithmetic.
import { AttfcError } from '../errors.js';

/** The ArcFace 5-point template for 112x112 crops: eyes, nose tip, mouth corners (x, y). */
export const ARCFACE_TEMPLATE_112: readonly (readonly [number, number])[] = [
  [38.2946, 51.6963],
  [73.5318, 51.5014],
  [56.0252, 71.7366],
  [41.5493, 92.3655],
  [70.7299, 92.2041],
];

// x of the original 96x112 template; the 112x112 one adds 8 (in float32 in the reference)
const TEMPLATE_96_X = [30.2946, 65.5318, 48.0252, 33.5493, 62.7299];

/**
 * The template for a size x size crop, flat [x1, y1, ..., x5, y5]. At 112 it is bit-identical to the
 * reference's float32 array (96x112 template, then x += 8 in float32); other sizes scale it.
 */
export function arcfaceTemplate(size = 112): Float64Array {
  const out = new Float64Array(10);
  ARCFACE_TEMPLATE_112.forEach(([, y], i) => {
    const x32 = Math.fround(Math.fround(TEMPLATE_96_X[i]) + 8);
    out[2 * i] = size === 112 ? x32 : x32 * (size / 112);
    out[2 * i + 1] = size === 112 ? Math.fround(y) : Math.fround(y) * (size / 112);
  });
  return out;
}

/** A 2x3 affine matrix [a, b, c, d, e, f]: x' = a x + b y + c, y' = d x + e y + f. */
export type Affine = [number, number, number, number, number, number];

/**
 * Least-squares similarity transform (rotation, uniform scale, translation; no reflection) mapping
 * `src` points onto `dst` points, both flat [x0, y0, x1, y1, ...]. This is Umeyama's estimate with scale
 * in closed form for 2-D: with centred points, a = Σ(s·d)/Σ|s|², b = Σ(s×d)/Σ|s|² and M = [[a, -b], [b, a]].
 * It equals skimage's SVD route, whose reflection correction picks the same optimal proper rotation.
 */
export function estimateSimilarity(src: ArrayLike<number>, dst: ArrayLike<number>): Affine {
  const n = src.length / 2;
  if (n < 2 || src.length !== dst.length) throw new Error(`estimateSimilarity: need >= 2 matching points`);
  let sx = 0, sy = 0, dx = 0, dy = 0;
  for (let i = 0; i < n; i++) {
    sx += src[2 * i];
    sy += src[2 * i + 1];
    dx += dst[2 * i];
    dy += dst[2 * i + 1];
  }
  sx /= n; sy /= n; dx /= n; dy /= n;
  let ss = 0, dot = 0, cross = 0;
  for (let i = 0; i < n; i++) {
    const px = src[2 * i] - sx, py = src[2 * i + 1] - sy;
    const qx = dst[2 * i] - dx, qy = dst[2 * i + 1] - dy;
    ss += px * px + py * py;
    dot += px * qx + py * qy;
    cross += px * qy - py * qx;
  }
  if (!(ss > 0)) throw new AttfcError('landmarks are all at one point; cannot estimate an alignment');
  const a = dot / ss;
  const b = cross / ss;
  return [a, -b, dx - (a * sx - b * sy), b, a, dy - (b * sx + a * sy)];
}

/** Applies an affine matrix to a point. */
export function applyAffine(m: Affine, x: number, y: number): [number, number] {
  return [m[0] * x + m[1] * y + m[2], m[3] * x + m[4] * y + m[5]];
}

/** cv2.invertAffineTransform. */
export function invertAffine(m: Affine): Affine {
  let det = m[0] * m[4] - m[1] * m[3];
  det = det !== 0 ? 1 / det : 0;
  const a11 = m[4] * det, a22 = m[0] * det, a12 = -m[1] * det, a21 = -m[3] * det;
  return [a11, a12, -a11 * m[2] - a12 * m[5], a21, a22, -a21 * m[2] - a22 * m[5]];
}

// cvRound: round half to even (lrint in the default rounding mode)
function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

const AB_BITS = 10; // OpenCV: coordinates in 1/1024 pixel, then INTER_BITS = 5 (1/32 pixel) for the weights
const AB_SCALE = 1 << AB_BITS;
const INTER_BITS = 5;
const INTER_TAB = 1 << INTER_BITS;
const ROUND_DELTA = AB_SCALE / INTER_TAB / 2;

/**
 * cv2.warpAffine(src, M, (size, size), flags=INTER_LINEAR, borderMode=BORDER_CONSTANT, borderValue=0)
 * on packed RGB (or any channel count). `m` maps source to destination coordinates (pixel centres at
 * integers). Like OpenCV (<= 4.10), source coordinates are quantised to 1/32 pixel and blended with 15-bit
 * integer weights; neighbours outside the image count as 0.
 */
export function warpAffineBilinear(
  src: Uint8Array,
  width: number,
  height: number,
  m: Affine,
  outWidth: number,
  outHeight: number,
  channels = 3,
): Uint8Array {
  const inv = invertAffine(m);
  const out = new Uint8Array(outWidth * outHeight * channels);
  const adelta = new Int32Array(outWidth);
  const bdelta = new Int32Array(outWidth);
  for (let x = 0; x < outWidth; x++) {
    adelta[x] = roundHalfEven(inv[0] * x * AB_SCALE);
    bdelta[x] = roundHalfEven(inv[3] * x * AB_SCALE);
  }
  for (let y = 0; y < outHeight; y++) {
    const x0 = roundHalfEven((inv[1] * y + inv[2]) * AB_SCALE) + ROUND_DELTA;
    const y0 = roundHalfEven((inv[4] * y + inv[5]) * AB_SCALE) + ROUND_DELTA;
    for (let x = 0; x < outWidth; x++) {
      const X = (x0 + adelta[x]) >> (AB_BITS - INTER_BITS);
      const Y = (y0 + bdelta[x]) >> (AB_BITS - INTER_BITS);
      const ix = X >> INTER_BITS;
      const iy = Y >> INTER_BITS;
      const fx = X & (INTER_TAB - 1);
      const fy = Y & (INTER_TAB - 1);
      // OpenCV's bilinear table: exact products in 1/32768, except that (0,0) saturates to 32767 and
      // its fix-up puts the missing unit on the opposite corner.
      let w00 = (INTER_TAB - fx) * (INTER_TAB - fy) * 32;
      const w01 = fx * (INTER_TAB - fy) * 32;
      const w10 = (INTER_TAB - fx) * fy * 32;
      let w11 = fx * fy * 32;
      if (fx === 0 && fy === 0) {
        w00 = 32767;
        w11 = 1;
      }
      const o = (y * outWidth + x) * channels;
      if (ix >= width || ix + 1 < 0 || iy >= height || iy + 1 < 0) continue; // entirely outside: border 0
      const in00 = ix >= 0 && iy >= 0;
      const in01 = ix + 1 < width && iy >= 0;
      const in10 = ix >= 0 && iy + 1 < height;
      const in11 = ix + 1 < width && iy + 1 < height;
      const p00 = (iy * width + ix) * channels;
      const p10 = p00 + width * channels;
      for (let c = 0; c < channels; c++) {
        const v =
          (in00 ? src[p00 + c] * w00 : 0) +
          (in01 ? src[p00 + channels + c] * w01 : 0) +
          (in10 ? src[p10 + c] * w10 : 0) +
          (in11 ? src[p10 + channels + c] * w11 : 0);
        const r = (v + (1 << 14)) >> 15;
        out[o + c] = r < 0 ? 0 : r > 255 ? 255 : r;
      }
    }
  }
  return out;
}

/**
 * Aligns one face: similarity transform from its 5 landmarks (flat x1 y1 .. x5 y5) to the ArcFace
 * template at `size`, then the bilinear warp. Returns size x size RGB.
 */
export function alignRgb(
  rgb: Uint8Array,
  width: number,
  height: number,
  landmarks: ArrayLike<number>,
  size = 112,
): Uint8Array {
  const src = Float64Array.from({ length: 10 }, (_, i) => Math.fround(landmarks[i]));
  const m = estimateSimilarity(src, arcfaceTemplate(size));
  return warpAffineBilinear(rgb, width, height, m, size, size, 3);
}
