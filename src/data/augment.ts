// Training-time augmentation (random horizontal flip) and input normalisation (x/255 - 0.5) / 0.5.
import { deriveSeed } from './sampler.js';

const FLIP_STREAM = 3;

/** uint8 -> normalised float, computed once with the exact reference formula. */
const NORMALISED = (() => {
  const lut = new Float32Array(256);
  for (let v = 0; v < 256; v++) lut[v] = (v / 255 - 0.5) / 0.5;
  return lut;
})();

/**
 * Whether image `slot` of batch `step` is flipped (probability 1/2). A pure function of
 * (seed, step, slot), so it does not depend on which worker decodes the image or when.
 */
export function flipDecision(seed: number, step: number, slot: number): boolean {
  return (deriveSeed(seed, FLIP_STREAM, step, slot) & 1) === 1;
}

/**
 * Writes one size x size RGB image (HWC uint8) normalised into `out` (NHWC float32) starting at
 * element `offset`, mirrored left-right when `flip` is set.
 */
export function writeNormalised(rgb: Uint8Array, size: number, out: Float32Array, offset: number, flip: boolean): void {
  if (rgb.length !== size * size * 3) throw new RangeError(`expected ${size * size * 3} bytes, got ${rgb.length}`);
  if (offset < 0 || offset + rgb.length > out.length) throw new RangeError(`slot at ${offset} does not fit in ${out.length}`);
  const row = size * 3;
  for (let y = 0; y < size; y++) {
    const rowStart = y * row;
    for (let x = 0; x < size; x++) {
      const src = rowStart + (flip ? size - 1 - x : x) * 3;
      const dst = offset + rowStart + x * 3;
      out[dst] = NORMALISED[rgb[src]];
      out[dst + 1] = NORMALISED[rgb[src + 1]];
      out[dst + 2] = NORMALISED[rgb[src + 2]];
    }
  }
}
