// Capture effects on raw interleaved RGB pixels (float, 0..255): illumination and colour cast, optical
// blur, low resolution (area down-sample then bilinear up-sample), sensor noise. Plain loops on small
// images are faster than extra sharp round trips.
import type { Rng } from '../../util/rng.js';
import type { ImageVariation } from './variation.js';

/** Inverse normal CDF samples on a 4096-point grid, so noise costs one table look-up per value. */
const NORMAL_TABLE = (() => {
  const n = 4096;
  const t = new Float32Array(n);
  for (let i = 0; i < n; i++) t[i] = inverseNormalCdf((i + 0.5) / n);
  return t;
})();

/** Acklam's rational approximation of the standard normal quantile (|error| < 1.2e-9). */
function inverseNormalCdf(p: number): number {
  const a = [-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716, 2.506628277459239];
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572];
  const c = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const lo = 0.02425;
  if (p < lo) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  if (p > 1 - lo) return -inverseNormalCdf(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q) / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

/** Directional light, brightness, contrast around mid-grey and per-channel colour cast, in place. */
export function illuminate(img: Float32Array, size: number, light: ImageVariation['illumination']): void {
  const cos = Math.cos(light.angle);
  const sin = Math.sin(light.angle);
  const k = (2 * light.strength) / size;
  const g0 = light.cast[0] * light.brightness;
  const g1 = light.cast[1] * light.brightness;
  const g2 = light.cast[2] * light.brightness;
  const c = light.contrast;
  const offset = 128 * (1 - c);
  for (let y = 0, i = 0; y < size; y++) {
    const dy = (y - size / 2) * sin;
    for (let x = 0; x < size; x++, i += 3) {
      const f = (1 + k * ((x - size / 2) * cos + dy)) * c;
      img[i] = img[i] * g0 * f + offset;
      img[i + 1] = img[i + 1] * g1 * f + offset;
      img[i + 2] = img[i + 2] * g2 * f + offset;
    }
  }
}

/** Above this sigma the Gaussian is approximated by three box filters (cost independent of sigma). */
const BOX_BLUR_SIGMA = 1.5;

/** Separable Gaussian blur with edge replication, in place (no-op for sigma < 0.3 pixels). */
export function gaussianBlur(img: Float32Array, size: number, sigma: number): void {
  if (sigma < 0.3) return;
  const tmp = new Float32Array(img.length);
  if (sigma >= BOX_BLUR_SIGMA) {
    // three boxes of odd width w have variance 3 (w^2 - 1) / 12 = sigma^2
    const radius = Math.max(1, Math.round((Math.sqrt(4 * sigma * sigma + 1) - 1) / 2));
    for (let pass = 0; pass < 3; pass++) {
      boxRowsTransposed(img, tmp, size, radius);
      boxRowsTransposed(tmp, img, size, radius);
    }
    return;
  }
  const radius = Math.ceil(3 * sigma);
  const kernel = new Float32Array(2 * radius + 1);
  let sum = 0;
  for (let i = -radius; i <= radius; i++) sum += kernel[i + radius] = Math.exp(-(i * i) / (2 * sigma * sigma));
  for (let i = 0; i < kernel.length; i++) kernel[i] /= sum;
  // two horizontal passes, each writing its output transposed, so both read contiguous padded rows
  blurRowsTransposed(img, tmp, size, kernel, radius);
  blurRowsTransposed(tmp, img, size, kernel, radius);
}

/** Copies row y of src into `padded` with `radius` replicated edge pixels on both sides. */
function padRow(src: Float32Array, padded: Float32Array, y: number, size: number, radius: number): void {
  const row = y * size * 3;
  padded.set(src.subarray(row, row + size * 3), radius * 3);
  for (let p = 0; p < radius; p++) {
    for (let c = 0; c < 3; c++) {
      padded[p * 3 + c] = src[row + c];
      padded[(radius + size + p) * 3 + c] = src[row + (size - 1) * 3 + c];
    }
  }
}

/** Box filter of width 2r+1 along rows by running sums, output transposed. */
function boxRowsTransposed(src: Float32Array, dst: Float32Array, size: number, radius: number): void {
  const padded = new Float32Array((size + 2 * radius) * 3);
  const width = 2 * radius + 1;
  const inv = 1 / width;
  for (let y = 0; y < size; y++) {
    padRow(src, padded, y, size, radius);
    let r = 0;
    let g = 0;
    let b = 0;
    for (let t = 0; t < width; t++) {
      r += padded[t * 3];
      g += padded[t * 3 + 1];
      b += padded[t * 3 + 2];
    }
    for (let x = 0; x < size; x++) {
      const o = (x * size + y) * 3;
      dst[o] = r * inv;
      dst[o + 1] = g * inv;
      dst[o + 2] = b * inv;
      if (x + 1 < size) {
        const add = (x + width) * 3;
        const sub = x * 3;
        r += padded[add] - padded[sub];
        g += padded[add + 1] - padded[sub + 1];
        b += padded[add + 2] - padded[sub + 2];
      }
    }
  }
}

function blurRowsTransposed(src: Float32Array, dst: Float32Array, size: number, kernel: Float32Array, radius: number): void {
  const padded = new Float32Array((size + 2 * radius) * 3);
  const taps = kernel.length;
  for (let y = 0; y < size; y++) {
    padRow(src, padded, y, size, radius);
    for (let x = 0; x < size; x++) {
      let r = 0;
      let g = 0;
      let b = 0;
      for (let t = 0, j = x * 3; t < taps; t++, j += 3) {
        const w = kernel[t];
        r += padded[j] * w;
        g += padded[j + 1] * w;
        b += padded[j + 2] * w;
      }
      const o = (x * size + y) * 3;
      dst[o] = r;
      dst[o + 1] = g;
      dst[o + 2] = b;
    }
  }
}

/** Area-average down to `low` x `low` pixels, then bilinear back up to `size`, in place. */
export function lowResolution(img: Float32Array, size: number, low: number): void {
  if (low >= size) return;
  const small = new Float32Array(low * low * 3);
  const step = size / low;
  for (let sy = 0; sy < low; sy++) {
    const y0 = Math.floor(sy * step);
    const y1 = Math.max(y0 + 1, Math.floor((sy + 1) * step));
    for (let sx = 0; sx < low; sx++) {
      const x0 = Math.floor(sx * step);
      const x1 = Math.max(x0 + 1, Math.floor((sx + 1) * step));
      let r = 0;
      let g = 0;
      let b = 0;
      for (let y = y0; y < y1; y++) {
        for (let x = x0; x < x1; x++) {
          const j = (y * size + x) * 3;
          r += img[j];
          g += img[j + 1];
          b += img[j + 2];
        }
      }
      const n = (y1 - y0) * (x1 - x0);
      const o = (sy * low + sx) * 3;
      small[o] = r / n;
      small[o + 1] = g / n;
      small[o + 2] = b / n;
    }
  }
  for (let y = 0; y < size; y++) {
    const fy = Math.min(low - 1, Math.max(0, (y + 0.5) / step - 0.5));
    const y0 = Math.floor(fy);
    const y1 = Math.min(low - 1, y0 + 1);
    const wy = fy - y0;
    for (let x = 0; x < size; x++) {
      const fx = Math.min(low - 1, Math.max(0, (x + 0.5) / step - 0.5));
      const x0 = Math.floor(fx);
      const x1 = Math.min(low - 1, x0 + 1);
      const wx = fx - x0;
      const o = (y * size + x) * 3;
      for (let c = 0; c < 3; c++) {
        const top = small[(y0 * low + x0) * 3 + c] * (1 - wx) + small[(y0 * low + x1) * 3 + c] * wx;
        const bottom = small[(y1 * low + x0) * 3 + c] * (1 - wx) + small[(y1 * low + x1) * 3 + c] * wx;
        img[o + c] = top * (1 - wy) + bottom * wy;
      }
    }
  }
}

/** Gaussian sensor noise of standard deviation `std` levels: half shared by the channels (luma), half per channel. */
export function addNoise(img: Float32Array, std: number, rng: Rng): void {
  if (std <= 0) return;
  const part = std * Math.SQRT1_2;
  // an inlined xorshift32 seeded from the image's stream: ~3x cheaper than a method call per value;
  // each 32-bit draw yields two 12-bit table indices
  let x = rng.nextUint32() | 1;
  const draw = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
  for (let i = 0; i < img.length; i += 3) {
    const u = draw();
    const w = draw();
    const l = part * NORMAL_TABLE[u >>> 20];
    img[i] += l + part * NORMAL_TABLE[(u >>> 8) & 4095];
    img[i + 1] += l + part * NORMAL_TABLE[w >>> 20];
    img[i + 2] += l + part * NORMAL_TABLE[(w >>> 8) & 4095];
  }
}

/** Rounds (half to even) and clamps to 8-bit RGB. */
export function toBytes(img: Float32Array): Buffer {
  const bytes = new Uint8ClampedArray(img);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
