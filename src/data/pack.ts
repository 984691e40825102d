// `data pack`: converts an image folder into an insightface-layout RecordIO dataset. JPEG files are
// copied byte for byte (after a full decode check); anything else (PNG) is re-encoded to JPEG.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { AttfcError } from '../errors.js';
import { checkImage } from './dataset.js';
import { scanImageFolder } from './imageFolder.js';
import { InsightfaceRecWriter } from './recordioWriter.js';
import { alignLargestFace, noFaceMessage } from '../face/detect.js';
import { encodeRgb } from '../face/image.js';

export interface PackOptions {
  /** JPEG quality for re-encoded (non-JPEG) images; default 95. */
  jpegQuality?: number;
  /** Called after each image (written or skipped). */
  onProgress?: (done: number, total: number) => void;
  /**
   * Align every image first (largest face, ArcFace template, `size` x `size`, JPEG): images without a
   * face or that cannot be read are skipped, reported to `onSkip`, and counted in the report; an
   * identity left with no image is dropped and the others renumbered in order.
   */
  align?: { size: number; onSkip?: (file: string, reason: string) => void };
}

export interface PackReport {
  out: string;
  identities: number;
  images: number;
  /** Images that were not JPEG and were re-encoded. */
  reencoded: number;
  /** Size written to `property`: that of the first image. */
  imageSize: { width: number; height: number };
  /** Images whose size differs from `imageSize`. */
  otherSizes: number;
  /** With `align`: images skipped (no face or unreadable) and identities left without images. */
  skipped?: { images: number; identities: number };
}

const PACK_BATCH = 8;

/** Packs `folder` (root/<identity>/<image>.jpg|png) into `out`/train.rec, train.idx and property. */
export async function pack(folder: string, out: string, options: PackOptions = {}): Promise<PackReport> {
  const quality = options.jpegQuality ?? 95;
  const scan = scanImageFolder(folder);
  if (resolve(out) === resolve(folder)) throw new AttfcError(`${out}: the output directory must differ from the image folder`);
  if (existsSync(join(out, 'train.rec'))) {
    throw new AttfcError(`${join(out, 'train.rec')}: already exists; choose an empty output directory`);
  }
  const total = scan.files.length;
  if (options.align) return packAligned(folder, out, scan, options.align, options.onProgress);
  let writer: InsightfaceRecWriter | null = null;
  let reencoded = 0;
  let otherSizes = 0;
  let imageSize = { width: 0, height: 0 };
  try {
    for (let b0 = 0; b0 < total; b0 += PACK_BATCH) {
      const batch: Array<Promise<PreparedImage>> = [];
      for (let i = b0; i < Math.min(total, b0 + PACK_BATCH); i++) batch.push(prepareImage(join(folder, scan.files[i]!), quality));
      const prepared = await Promise.all(batch);
      for (let k = 0; k < prepared.length; k++) {
        const img = prepared[k]!;
        if (!writer) {
          imageSize = { width: img.width, height: img.height };
          writer = new InsightfaceRecWriter(out, imageSize);
        }
        if (img.width !== imageSize.width || img.height !== imageSize.height) otherSizes++;
        if (img.reencoded) reencoded++;
        writer.add(scan.labels[b0 + k]!, img.jpeg);
        options.onProgress?.(b0 + k + 1, total);
      }
    }
    writer?.close();
  } catch (e) {
    writer?.abort();
    throw e;
  }
  return { out, identities: scan.identityNames.length, images: total, reencoded, imageSize, otherSizes };
}

/** pack() with alignment: one image at a time (detection runs on the tfjs engine), skipped images listed. */
async function packAligned(
  folder: string,
  out: string,
  scan: ReturnType<typeof scanImageFolder>,
  align: NonNullable<PackOptions['align']>,
  onProgress: PackOptions['onProgress'],
): Promise<PackReport> {
  const total = scan.files.length;
  const writer = new InsightfaceRecWriter(out, { width: align.size, height: align.size });
  let label = -1;
  let lastIdentity = -1;
  let skippedImages = 0;
  try {
    for (let i = 0; i < total; i++) {
      const file = join(folder, scan.files[i]!);
      let crop: Awaited<ReturnType<typeof alignLargestFace>> | null = null;
      try {
        crop = await alignLargestFace(file, align.size, file);
      } catch (e) {
        if (!(e instanceof AttfcError)) throw e;
        skippedImages++;
        align.onSkip?.(file, e.message.startsWith(`${file}: `) ? e.message.slice(file.length + 2) : e.message);
      }
      if (crop && !crop.crop) {
        skippedImages++;
        align.onSkip?.(file, noFaceMessage(crop));
      } else if (crop?.crop) {
        if (scan.labels[i] !== lastIdentity) {
          lastIdentity = scan.labels[i]!;
          label++;
        }
        writer.add(label, await encodeRgb(crop.crop, 'jpeg'));
      }
      onProgress?.(i + 1, total);
    }
    if (writer.numImages === 0) throw new AttfcError(`${folder}: no face found in any of its ${total} images; nothing to pack`);
    writer.close();
  } catch (e) {
    writer.abort();
    throw e;
  }
  const identities = writer.numIdentities;
  return {
    out,
    identities,
    images: writer.numImages,
    reencoded: writer.numImages,
    imageSize: { width: align.size, height: align.size },
    otherSizes: 0,
    skipped: { images: skippedImages, identities: scan.identityNames.length - identities },
  };
}

interface PreparedImage {
  jpeg: Buffer;
  width: number;
  height: number;
  reencoded: boolean;
}

async function prepareImage(path: string, quality: number): Promise<PreparedImage> {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new AttfcError(`${path}: cannot read image (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const isJpeg = bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff;
  if (isJpeg) {
    const { width, height } = await checkImage(bytes, path);
    return { jpeg: bytes, width, height, reencoded: false };
  }
  await checkImage(bytes, path);
  const { data, info } = await sharp(bytes).flatten().jpeg({ quality }).toBuffer({ resolveWithObject: true });
  return { jpeg: data, width: info.width, height: info.height, reencoded: true };
}
