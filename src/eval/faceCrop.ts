// The pixel preparation between a decoded image and an embedding model: centre square crop, cubic
// resize to the model input size, and the (x/255 - 0.5)/0.5 normalisation. It imports nothing, so the
// browser verifier loads this very module (compiled) and prepares pixels exactly as loadEmbedder() does.

/** (x/255 - 0.5)/0.5 for every byte value, rounded step by step in float32 as the PyTorch reference computes it. */
export const NORMALIZED_VALUES: Float32Array = Float32Array.from({ length: 256 }, (_, x) =>
  Math.fround(Math.fround(Math.fround(x / 255) - 0.5) / 0.5),
);

/** Writes RGB bytes as normalised float32 values into `out` at `offset` (a fresh array when omitted). */
export function normalizeRgb(rgb: ArrayLike<number>, out = new Float32Array(rgb.length), offset = 0): Float32Array {
  for (let i = 0; i < rgb.length; i++) out[offset + i] = NORMALIZED_VALUES[rgb[i]];
  return out;
}

/** Catmull-Rom cubic (a = -0.5), the kernel libvips and PIL call "bicubic". */
function cubic(x: number): number {
  const t = Math.abs(x);
  if (t < 1) return (1.5 * t - 2.5) * t * t + 1;
  if (t < 2) return ((-0.5 * t + 2.5) * t - 4) * t + 2;
  return 0;
}

/** Per output pixel: the first source index and the normalised weights of the source pixels it reads. */
function resampleWeights(from: number, to: number): { first: Int32Array; count: Int32Array; weights: Float64Array; taps: number } {
  const scale = from / to;
  const widen = Math.max(scale, 1); // shrinking widens the kernel so every source pixel counts (antialiasing)
  const support = 2 * widen;
  const taps = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(to);
  const count = new Int32Array(to);
  const weights = new Float64Array(to * taps);
  for (let i = 0; i < to; i++) {
    const centre = (i + 0.5) * scale;
    const lo = Math.max(0, Math.floor(centre - support));
    const hi = Math.min(from, Math.ceil(centre + support));
    let sum = 0;
    for (let j = lo; j < hi; j++) {
      const w = cubic((j + 0.5 - centre) / widen);
      weights[i * taps + (j - lo)] = w;
      sum += w;
    }
    for (let j = lo; j < hi; j++) weights[i * taps + (j - lo)] /= sum;
    first[i] = lo;
    count[i] = hi - lo;
  }
  return { first, count, weights, taps };
}

/**
 * RGB at exactly size x size from decoded pixels (`channels` 3 = RGB or 4 = RGBA, alpha ignored). An
 * image already at that size is used as it is; any other is cropped to its centre square (offsets
 * rounded down) and resized with a separable Catmull-Rom cubic, widened when shrinking; each output
 * value is rounded to the nearest integer (halves up) and clamped to 0..255. Only IEEE double
 * arithmetic, so every JavaScript engine gives the same bytes.
 */
export function squareCropResize(pixels: ArrayLike<number>, width: number, height: number, channels: 3 | 4, size: number): Uint8Array {
  if (pixels.length !== width * height * channels)
    throw new Error(`squareCropResize: ${pixels.length} values is not ${width}x${height}x${channels}`);
  const out = new Uint8Array(size * size * 3);
  const side = Math.min(width, height);
  const x0 = Math.floor((width - side) / 2);
  const y0 = Math.floor((height - side) / 2);
  if (side === size) {
    for (let y = 0; y < size; y++)
      for (let x = 0; x < size; x++)
        for (let k = 0; k < 3; k++) out[(y * size + x) * 3 + k] = pixels[((y0 + y) * width + x0 + x) * channels + k];
    return out;
  }
  const { first, count, weights, taps } = resampleWeights(side, size);
  // Horizontal pass over the crop's rows: side rows x size columns, kept in float64.
  const rows = new Float64Array(side * size * 3);
  for (let y = 0; y < side; y++) {
    const src = (y0 + y) * width;
    for (let x = 0; x < size; x++) {
      let r = 0;
      let g = 0;
      let b = 0;
      for (let t = 0; t < count[x]; t++) {
        const w = weights[x * taps + t];
        const p = (src + x0 + first[x] + t) * channels;
        r += w * pixels[p];
        g += w * pixels[p + 1];
        b += w * pixels[p + 2];
      }
      const o = (y * size + x) * 3;
      rows[o] = r;
      rows[o + 1] = g;
      rows[o + 2] = b;
    }
  }
  // Vertical pass, then round once.
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      for (let k = 0; k < 3; k++) {
        let v = 0;
        for (let t = 0; t < count[y]; t++) v += weights[y * taps + t] * rows[((first[y] + t) * size + x) * 3 + k];
        const q = Math.floor(v + 0.5);
        out[(y * size + x) * 3 + k] = q < 0 ? 0 : q > 255 ? 255 : q;
      }
    }
  }
  return out;
}
