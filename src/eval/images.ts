// Image decoding for evaluation: encoded bytes -> RGB uint8 at the model input size, and RGB -> the
// normalised float input (x/255 - 0.5)/0.5 that insightface models expect.
import sharp from 'sharp';
import { AttfcError } from '../errors.js';
import { normalizeRgb, squareCropResize } from './faceCrop.js';

/** Decoded RGB pixels, row-major, 3 bytes per pixel. */
export interface RgbImage {
  width: number;
  height: number;
  data: Buffer;
}

/**
 * Decodes any sharp-readable image to 8-bit RGB (alpha dropped, grey expanded). `autoOrient` applies
 * the EXIF orientation like OpenCV's imread. `what` names the image in errors.
 */
export async function decodeRgb(input: Buffer | string, what: string, autoOrient = false): Promise<RgbImage> {
  try {
    let img = sharp(input, { failOn: 'error' });
    if (autoOrient) img = img.autoOrient();
    const { data, info } = await img.removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
    if (info.channels === 3) return { width: info.width, height: info.height, data };
    if (info.channels === 1) {
      const rgb = Buffer.alloc(info.width * info.height * 3);
      for (let i = 0; i < info.width * info.height; i++) rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = data[i];
      return { width: info.width, height: info.height, data: rgb };
    }
    throw new Error(`unexpected ${info.channels} channels`);
  } catch (e) {
    throw new AttfcError(`${what}: cannot decode image (${(e as Error).message.split('\n')[0]})`);
  }
}

/**
 * RGB at exactly size x size, upright (EXIF orientation applied, as browsers and OpenCV's imread do).
 * Images already at that size are used as decoded (the released .bin sets are 112x112); others are
 * cropped to their centre square and resized with a cubic kernel (squareCropResize, the same code the
 * browser verifier runs).
 */
export async function decodeRgbSquare(input: Buffer | string, size: number, what: string): Promise<Buffer> {
  const img = await decodeRgb(input, what, true);
  if (img.width === size && img.height === size) return img.data;
  const rgb = squareCropResize(img.data, img.width, img.height, 3, size);
  return Buffer.from(rgb.buffer, rgb.byteOffset, rgb.length);
}

/** Writes RGB bytes of equal-size images into one NHWC float32 batch, normalised to [-1, 1]. */
export function normalizeBatch(images: readonly Uint8Array[], size: number): Float32Array {
  const per = size * size * 3;
  const out = new Float32Array(images.length * per);
  images.forEach((img, n) => {
    if (img.length !== per) throw new Error(`normalizeBatch: image ${n} has ${img.length} bytes, expected ${per}`);
    normalizeRgb(img, out, n * per);
  });
  return out;
}
