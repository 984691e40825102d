// Plain embeddings of image files (no flip): what `attfc embed` writes.
import { embedBatch, type Embedder } from './embedder.js';
import { decodeRgbSquare, normalizeBatch } from './images.js';
import { alignLargestFace, noFaceMessage } from '../face/detect.js';
import { AttfcError } from '../errors.js';
import type { ProgressFn } from '../util/progress.js';

export interface EmbedFilesResult {
  dim: number;
  /** L2-normalised embeddings, row i for files[i], [n, dim] row-major. */
  embeddings: Float32Array;
}

/**
 * Embeds each image file once (no flip-sum: one image in, its own embedding out) and L2-normalises
 * the result, so cosine similarity is a dot product. Images not at the model size are scaled on the
 * short side and centre-cropped; they should already be aligned face crops. With `align` they are photos:
 * the largest face of each is detected and aligned first, and an image without one is an error.
 */
export async function embedImageFiles(
  embedder: Embedder,
  files: readonly string[],
  options: { batchSize?: number; onProgress?: ProgressFn; align?: boolean } = {},
): Promise<EmbedFilesResult> {
  const size = embedder.inputSize;
  const batchSize = Math.max(1, Math.floor(options.batchSize ?? 32));
  let out: Float32Array = new Float32Array(0);
  let dim = 0;
  for (let start = 0; start < files.length; start += batchSize) {
    const names = files.slice(start, start + batchSize);
    const rgb = options.align ? await alignedCrops(names, size) : await Promise.all(names.map((f) => decodeRgbSquare(f, size, f)));
    const batch = await embedBatch(embedder, normalizeBatch(rgb, size), names.length, (row) => names[row]!);
    if (start === 0) {
      dim = batch.dim;
      out = new Float32Array(files.length * dim);
    }
    for (let k = 0; k < names.length; k++) {
      const row = batch.orig.subarray(k * dim, (k + 1) * dim);
      let s = 0;
      for (let j = 0; j < dim; j++) s += row[j] * row[j];
      const norm = Math.sqrt(s) || 1;
      for (let j = 0; j < dim; j++) out[(start + k) * dim + j] = row[j] / norm;
    }
    options.onProgress?.(start + names.length, files.length);
  }
  return { dim, embeddings: out };
}

/** The aligned crop of each file's largest face, one at a time (detection shares the engine with the model). */
async function alignedCrops(files: readonly string[], size: number): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for (const f of files) {
    const { crop, width, height } = await alignLargestFace(f, size, f);
    if (!crop) throw new AttfcError(`${f}: ${noFaceMessage({ width, height })}; every image needs a face with --align (\`attfc align --json\` lists them)`);
    out.push(crop.data);
  }
  return out;
}
