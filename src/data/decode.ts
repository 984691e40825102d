// Encoded image bytes -> size x size RGB pixels (HWC, uint8), the input every model here expects.
import sharp from 'sharp';
import { AttfcError } from '../errors.js';

/**
 * Decodes a JPEG/PNG/... into RGB (alpha dropped, greyscale expanded) and resizes it to size x size
 * when it is not already that size. Aligned face crops are square, so the whole crop is kept
 * (fit 'fill'); lanczos3 is sharp's default and the best choice for shrinking. A truncated or
 * undecodable image throws AttfcError naming `where` (e.g. dataset.describe(i)).
 */
export async function decodeToRgb(buf: Uint8Array, size: number, where: string): Promise<Uint8Array> {
  let data: Buffer;
  let channels: number;
  try {
    const out = await sharp(buf)
      .removeAlpha()
      .toColourspace('srgb')
      .resize(size, size, { fit: 'fill', kernel: 'lanczos3' })
      .raw()
      .toBuffer({ resolveWithObject: true });
    data = out.data;
    channels = out.info.channels;
    if (out.info.width !== size || out.info.height !== size) throw new Error(`decoded to ${out.info.width}x${out.info.height}`);
  } catch (e) {
    const reason = (e instanceof Error ? e.message : String(e)).split('\n')[0];
    throw new AttfcError(`${where}: cannot decode image (${buf.length} bytes): ${reason}`);
  }
  if (channels === 3) return new Uint8Array(data.buffer, data.byteOffset, data.length);
  return toThreeChannels(data, channels, size * size);
}

/** Keeps the first channel as grey (1-2 channels) or the first three (4+), so the output is always RGB. */
function toThreeChannels(data: Uint8Array, channels: number, pixels: number): Uint8Array {
  const rgb = new Uint8Array(pixels * 3);
  for (let p = 0; p < pixels; p++) {
    const src = p * channels;
    if (channels < 3) {
      rgb[p * 3] = rgb[p * 3 + 1] = rgb[p * 3 + 2] = data[src];
    } else {
      rgb[p * 3] = data[src];
      rgb[p * 3 + 1] = data[src + 1];
      rgb[p * 3 + 2] = data[src + 2];
    }
  }
  return rgb;
}
