// Batch alignment of image files and folders (what `attfc align` runs): every input image is read,
// its faces detected, the largest one (or every one) warped to the ArcFace template and written under
// the output folder at the same relative path. An image that cannot be read or holds no face is
// reported with its reason and the batch goes on; nothing is dropped without a word.
import { existsSync, mkdirSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { AttfcError } from '../errors.js';
import { alignRgb } from './align.js';
import { detectFacesInImage, largestFace, noFaceMessage } from './detect.js';
import { encodeRgb, readRgbImage } from './image.js';
import type { DetectOptions, DetectedFace } from './pipeline.js';

/** Image files a folder contributes (what sharp reads and phones write). */
const IMAGE_NAME = /\.(jpe?g|png|webp)$/i;

/** One image to align: where it is, and the output path its crop gets (without face suffix). */
export interface AlignInput {
  file: string;
  /** Output path relative to the output folder, e.g. `<identity>/<image>.jpg`. */
  relative: string;
}

/**
 * The images of the inputs: a file is itself (written as its base name); a folder contributes every
 * image below it (.jpg, .jpeg, .png, .webp), sorted, at its path relative to that folder, so
 * root/<identity>/<image> becomes out/<identity>/<image>. `skipped` lists other files found in folders.
 * Two inputs that would write the same output are refused before any work; `outDir`, when inside a
 * folder given, is not read.
 */
export function listAlignInputs(inputs: readonly string[], outDir?: string): { images: AlignInput[]; skipped: string[] } {
  const images: AlignInput[] = [];
  const skipped: string[] = [];
  const out = outDir === undefined ? null : path.resolve(outDir);
  const walk = (root: string, dir: string) => {
    for (const d of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      if (d.name.startsWith('.')) continue;
      const full = path.join(dir, d.name);
      const st = statSync(full, { throwIfNoEntry: false });
      if (st?.isDirectory() && path.resolve(full) === out) continue; // an output folder inside an input one
      if (st?.isDirectory()) walk(root, full);
      else if (st?.isFile() && IMAGE_NAME.test(d.name)) images.push({ file: full, relative: path.relative(root, full) });
      else skipped.push(full);
    }
  };
  for (const input of inputs) {
    const st = statSync(input, { throwIfNoEntry: false });
    if (st?.isDirectory()) walk(input, input);
    else images.push({ file: input, relative: path.basename(input) }); // unreadable files are reported per image
  }
  const seen = new Map<string, string>();
  for (const img of images) {
    const key = outputName(img.relative, 0, false);
    const other = seen.get(key);
    if (other) throw new AttfcError(`${img.file} and ${other} would both be written as ${key}; align them into different --out folders`);
    seen.set(key, img.file);
  }
  return { images, skipped };
}

/** The crop's output path: JPEG for .jpg/.jpeg inputs, PNG otherwise; `_<k>` before the extension for --all-faces. */
export function outputName(relative: string, face: number, allFaces: boolean): string {
  const ext = path.extname(relative);
  const jpeg = /^\.jpe?g$/i.test(ext);
  const stem = relative.slice(0, relative.length - ext.length);
  return `${stem}${allFaces ? `_${face}` : ''}${jpeg ? ext : '.png'}`;
}

/** What happened to one image (the JSON line `attfc align --json` prints). */
export interface AlignedImage {
  file: string;
  /** Every face found, largest box first; `crop` is the written file for the faces that were aligned. */
  faces: (Omit<DetectedFace, 'landmarks5' | 'meshScore'> & {
    landmarks: [number, number][];
    crop?: string | null;
    /** The box runs past the image's edge by more than a tenth of its side: its crop is black there. */
    atEdge?: true;
  })[];
  /** Why nothing was written: unreadable, or no face. */
  error?: string;
  /** 'unreadable' or 'no-face' when error is set. */
  problem?: 'unreadable' | 'no-face';
}

export interface AlignFilesOptions extends DetectOptions {
  out: string;
  /** Write into an output folder that already holds files (crops of the same names are replaced). */
  overwrite?: boolean;
  /** Crop side (default 112). */
  size?: number;
  /** Every face, not only the largest. */
  allFaces?: boolean;
  /** false: detect only, write nothing (the results then have no `crop`). Default true. */
  writeCrops?: boolean;
  /** Called after each image, in order. */
  onImage?: (result: AlignedImage, done: number, total: number) => void;
}

function writeAtomically(file: string, bytes: Buffer): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, bytes);
  renameSync(tmp, file);
}

const round = (v: number) => Math.round(v * 100) / 100;

/** Aligns every image; returns one result per image, in input order. */
export async function alignFiles(images: readonly AlignInput[], options: AlignFilesOptions): Promise<AlignedImage[]> {
  const size = options.size ?? 112;
  const write = options.writeCrops !== false;
  if (write && existsSync(options.out)) {
    if (!statSync(options.out).isDirectory()) throw new AttfcError(`--out ${options.out}: is a file; expected a folder`);
    if (!options.overwrite && readdirSync(options.out).length > 0)
      throw new AttfcError(`--out ${options.out}: already holds files (an earlier run?); choose an empty folder or pass --overwrite`);
  }
  const results: AlignedImage[] = [];
  for (const [i, input] of images.entries()) {
    let result: AlignedImage;
    try {
      const img = await readRgbImage(input.file, input.file);
      const found = (await detectFacesInImage(img, options)).sort((a, b) => b.box[2] * b.box[3] - a.box[2] * a.box[3]);
      const largest = largestFace(found);
      const faces: AlignedImage['faces'] = [];
      for (const [k, f] of found.entries()) {
        let crop: string | null = null;
        if (write && (options.allFaces || f === largest)) {
          crop = path.join(options.out, outputName(input.relative, k, options.allFaces === true));
          const rgb = { width: size, height: size, data: alignRgb(img.data, img.width, img.height, f.landmarks5.flat(), size) };
          writeAtomically(crop, await encodeRgb(rgb, crop.endsWith('.png') ? 'png' : 'jpeg'));
        }
        const [x, y, w, h] = f.box;
        const margin = -0.1 * Math.max(w, h) - 0.5;
        const atEdge = x < margin || y < margin || img.width - 1 - (x + w) < margin || img.height - 1 - (y + h) < margin;
        faces.push({
          box: f.box.map(round) as DetectedFace['box'],
          score: Math.round(f.score * 1000) / 1000,
          landmarks: f.landmarks5.map((p) => p.map(round) as [number, number]),
          ...(write ? { crop } : {}),
          ...(atEdge ? { atEdge: true as const } : {}),
        });
      }
      result = { file: input.file, faces };
      if (faces.length === 0) Object.assign(result, { error: noFaceMessage(img, options), problem: 'no-face' });
    } catch (e) {
      if (!(e instanceof AttfcError)) throw e;
      // the message already names the file
      result = { file: input.file, faces: [], error: e.message.startsWith(`${input.file}: `) ? e.message.slice(input.file.length + 2) : e.message, problem: 'unreadable' };
    }
    results.push(result);
    options.onImage?.(result, i + 1, images.length);
  }
  return results;
}
