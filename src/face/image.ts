// Photos -> upright 8-bit RGB pixels for face detection: header checked before any pixel is decoded
// (empty files, non-images and absurd sizes are refused with one line), EXIF orientation applied, grey
// expanded and alpha dropped. Never decodes an image whose header promises more than MAX_PIXELS.
import sharp, { type Metadata } from 'sharp';
import { openSync, readSync, closeSync } from 'node:fs';
import { AttfcError } from '../errors.js';
import { HEADER_BYTES, imageSizeFromHeader } from './imageHeader.js';

/** Decoded RGB pixels, row-major, 3 bytes per pixel. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** Largest image decoded: 100 megapixels (a 30000x30000 header is refused before decoding). */
export const MAX_PIXELS = 100_000_000;

/** An image as the face functions take it: encoded bytes, a file path, or decoded RGB. */
export type FaceImageInput = Buffer | Uint8Array | string | RgbImage;

function isRgbImage(x: FaceImageInput): x is RgbImage {
  return typeof x === 'object' && !(x instanceof Uint8Array) && 'data' in x && 'width' in x && 'height' in x;
}

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0];
}

function tooLarge(what: string, width: number, height: number): AttfcError {
  return new AttfcError(`${what}: ${width}x${height} pixels is over the ${MAX_PIXELS / 1e6} megapixel limit; refused before decoding (shrink it first)`);
}

/** The first HEADER_BYTES of a file (fewer for a shorter file). */
function readHead(file: string, what: string): Uint8Array {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new AttfcError(`${what}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a folder, not an image' : `cannot read (${code ?? firstLine(e)})`}`);
  }
  try {
    const buf = Buffer.alloc(HEADER_BYTES);
    const n = readSync(fd, buf, 0, HEADER_BYTES, 0);
    return buf.subarray(0, n);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new AttfcError(`${what}: ${code === 'EISDIR' ? 'is a folder, not an image' : `cannot read (${code ?? firstLine(e)})`}`);
  } finally {
    closeSync(fd);
  }
}

/**
 * Decodes any image sharp reads to upright RGB. `what` names the image in errors (the file path for
 * files). Grey is copied to the three channels; alpha is dropped (the colour under transparency is kept).
 */
export async function readRgbImage(input: FaceImageInput, what = typeof input === 'string' ? input : 'image'): Promise<RgbImage> {
  if (isRgbImage(input)) {
    if (input.data.length !== input.width * input.height * 3)
      throw new AttfcError(`${what}: ${input.data.length} bytes is not ${input.width}x${input.height} RGB`);
    return input;
  }
  if (typeof input !== 'string' && input.length === 0) throw new AttfcError(`${what}: empty (0 bytes); expected an image`);
  const head = typeof input === 'string' ? readHead(input, what) : input.subarray(0, HEADER_BYTES);
  if (head.length === 0) throw new AttfcError(`${what}: empty (0 bytes); expected an image`);
  const declared = imageSizeFromHeader(head);
  if (declared && declared.width * declared.height > MAX_PIXELS) throw tooLarge(what, declared.width, declared.height);
  let meta: Metadata;
  try {
    meta = await sharp(input, { limitInputPixels: false }).metadata();
  } catch (e) {
    throw new AttfcError(`${what}: not an image sharp can read (${firstLine(e)})`);
  }
  const width = meta.autoOrient?.width ?? meta.width ?? 0;
  const height = meta.autoOrient?.height ?? meta.height ?? 0;
  if (!(width > 0 && height > 0)) throw new AttfcError(`${what}: the header gives no image size`);
  if (width * height > MAX_PIXELS) throw tooLarge(what, width, height);
  try {
    const { data, info } = await sharp(input, { failOn: 'error', limitInputPixels: MAX_PIXELS })
      .autoOrient()
      .removeAlpha()
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.channels === 3) return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
    if (info.channels === 1) {
      const rgb = new Uint8Array(info.width * info.height * 3);
      for (let i = 0; i < info.width * info.height; i++) rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = data[i];
      return { width: info.width, height: info.height, data: rgb };
    }
    throw new Error(`unexpected ${info.channels} channels`);
  } catch (e) {
    throw new AttfcError(`${what}: cannot decode the ${meta.format ?? 'image'} data (${firstLine(e)})`);
  }
}

/** Encodes RGB pixels as PNG (lossless: what `attfc align` writes unless the name says .jpg). */
export async function encodeRgb(img: RgbImage, format: 'png' | 'jpeg'): Promise<Buffer> {
  const s = sharp(Buffer.from(img.data.buffer, img.data.byteOffset, img.data.length), { raw: { width: img.width, height: img.height, channels: 3 } });
  return format === 'png' ? s.png().toBuffer() : s.jpeg({ quality: 95 }).toBuffer();
}
