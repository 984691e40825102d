// Runs a model over a verification .bin set with insightface's protocol and reports the standard line.
import { createHash } from 'node:crypto';
import { AttfcError } from '../errors.js';
import { alignLargestFace } from '../face/detect.js';
import { readVerificationBin, type VerificationSet } from './binReader.js';
import { embedBatchWithFlip, type Embedder } from './embedder.js';
import { decodeRgbSquare, normalizeBatch } from './images.js';
import { formatFixed } from './numeric.js';
import { verificationMetrics } from './verification.js';
import { bestSimilarityThreshold, pairCosineSimilarities } from './threshold.js';

export interface EvaluateBinOptions {
  /** Images decoded and embedded per step (each is embedded twice: original and mirrored). Default 32. */
  batchSize?: number;
  /** Called after every batch with images embedded / images to embed (each distinct image once). */
  onProgress?: (done: number, total: number) => void;
  /** Set name in reports; default the file name without .bin. */
  name?: string;
  /**
   * Re-align every image before embedding: detect its largest face, take its five landmarks and warp
   * it to the ArcFace template at the model's input size. An image without a face is used as it is
   * (centre crop) and counted in the result's `alignment`.
   */
  align?: boolean;
  /**
   * Processes of a distributed run, each embedding its share of the images: every rank passes the same
   * set, embeds about 1/worldSize of it, and gets every rank's embeddings back (and the same result).
   */
  shard?: EmbeddingShard;
}

/** How the ranks of a distributed run pool their embeddings (concatenation in rank order, equal lengths). */
export interface EmbeddingShard {
  rank: number;
  worldSize: number;
  allGather(values: Float32Array): Float32Array;
}

/** Result of one verification set. */
export interface VerificationResult {
  name: string;
  pairs: number;
  /** Mean 10-fold accuracy (insightface "Accuracy-Flip"). */
  accuracy: number;
  /** Population std of the 10 fold accuracies. */
  std: number;
  /** Mean L2 norm of the raw embeddings (original and flipped images). */
  xnorm: number;
  /** attfc's: the best TAR over all pairs (no folds) with FAR <= 1e-3. */
  tarAtFar1e3AllPairs: number;
  /** insightface's VAL@FAR=1e-3 (calculate_val: per fold, an interpolated threshold), with std and FAR. */
  valAtFar1e3: { val: number; std: number; far: number };
  /** Area under the ROC. */
  auc: number;
  foldAccuracies: number[];
  /** ROC over all pairs (score = -distance), for plots, and the count of negative pairs behind it. */
  roc: { fpr: number[]; tpr: number[]; negatives: number };
  /**
   * The cosine-similarity cut with the best accuracy over all pairs for plain (unflipped) embeddings,
   * the ones loadEmbedder() computes; "same" iff similarity >= it (see bestSimilarityThreshold).
   */
  threshold: { similarity: number; accuracy: number };
  /** With `align`: distinct images aligned, and those without a face that were used as they are. */
  alignment?: { aligned: number; withoutFace: number };
}

/**
 * Evaluates `embedder` on a verification set (a path or an already parsed set). Images are decoded
 * batch by batch, so only one batch of pixels is ever held in memory.
 */
export async function evaluateBin(
  embedder: Embedder,
  source: string | VerificationSet,
  options: EvaluateBinOptions = {},
): Promise<VerificationResult> {
  const set = typeof source === 'string' ? readVerificationBin(source, options.name) : source;
  const name = options.name ?? set.name;
  const batchSize = Math.max(1, Math.floor(options.batchSize ?? 32));
  const total = set.images.length;
  if (set.issame.length === 0) throw new AttfcError(`${name}: the verification set has no pairs`);
  const size = embedder.inputSize;
  // Sets that reuse images (the same photo in several pairs) embed each distinct image once.
  const { distinct, slotOf } = distinctImages(set.images);
  // a rank of a distributed run embeds distinct images [from, to) (padded to `per` for the gather)
  const shard = options.shard && options.shard.worldSize > 1 ? options.shard : null;
  const per = shard ? Math.ceil(distinct.length / shard.worldSize) : distinct.length;
  const from = shard ? Math.min(distinct.length, shard.rank * per) : 0;
  const to = Math.min(distinct.length, from + per);
  let ownOrig: Float32Array | null = null;
  let ownFlip: Float32Array | null = null;
  let dim = 0;
  const alignment = { aligned: 0, withoutFace: 0 };
  const prepare = async (i: number): Promise<Uint8Array> => {
    const what = `${name} image ${i}`;
    if (options.align) {
      const { crop } = await alignLargestFace(Buffer.from(set.images[i]), size, what);
      if (crop) {
        alignment.aligned++;
        return crop.data;
      }
      alignment.withoutFace++;
    }
    return decodeRgbSquare(set.images[i], size, what);
  };
  // a rank with nothing to embed still embeds one image, to learn the embedding size
  for (let start = from; start < Math.max(to, from + 1); start += batchSize) {
    const end = Math.min(Math.max(to, Math.min(distinct.length, from + 1)), start + batchSize);
    const indices = end > start ? distinct.slice(start, end) : [distinct[0]];
    const rgb: Uint8Array[] = [];
    // one at a time when aligning: detection runs on the same engine as the model
    if (options.align) for (const i of indices) rgb.push(await prepare(i));
    else rgb.push(...(await Promise.all(indices.map(prepare))));
    const batch = await embedBatchWithFlip(embedder, normalizeBatch(rgb, size), indices.length);
    if (!ownOrig || !ownFlip) {
      dim = batch.dim;
      ownOrig = new Float32Array(per * dim);
      ownFlip = new Float32Array(per * dim);
    }
    const n = Math.min(indices.length, to - start);
    if (n > 0) {
      ownOrig.set(batch.orig.subarray(0, n * dim), (start - from) * dim);
      ownFlip.set((batch.flip as Float32Array).subarray(0, n * dim), (start - from) * dim);
    }
    options.onProgress?.(Math.min(end, to), distinct.length);
  }
  const uniqueOrig = shard ? shard.allGather(ownOrig!) : ownOrig;
  const uniqueFlip = shard ? shard.allGather(ownFlip!) : ownFlip;
  const orig = new Float32Array(total * dim);
  const flip = new Float32Array(total * dim);
  for (let i = 0; i < total; i++) {
    const from = slotOf[i] * dim;
    orig.set((uniqueOrig as Float32Array).subarray(from, from + dim), i * dim);
    flip.set((uniqueFlip as Float32Array).subarray(from, from + dim), i * dim);
  }
  const m = verificationMetrics(orig, flip, set.issame, dim);
  const plain = bestSimilarityThreshold(pairCosineSimilarities(orig, dim), set.issame);
  return {
    name,
    pairs: m.pairs,
    accuracy: m.accuracy,
    std: m.std,
    xnorm: m.xnorm,
    tarAtFar1e3AllPairs: m.tarAtFar1e3AllPairs,
    valAtFar1e3: { val: m.valAtFar1e3.val, std: m.valAtFar1e3.std, far: m.valAtFar1e3.far },
    auc: m.auc,
    foldAccuracies: m.foldAccuracies,
    roc: { fpr: Array.from(m.roc.fpr), tpr: Array.from(m.roc.tpr), negatives: m.roc.negatives },
    threshold: { similarity: plain.threshold, accuracy: plain.accuracy },
    ...(options.align ? { alignment } : {}),
  };
}

/** Indices of the first occurrence of each distinct image (by bytes), and each image's position among them. */
function distinctImages(images: readonly Uint8Array[]): { distinct: number[]; slotOf: Int32Array } {
  const byHash = new Map<string, number[]>();
  const distinct: number[] = [];
  const slotOf = new Int32Array(images.length);
  images.forEach((img, i) => {
    const key = createHash('sha1').update(img).digest('base64');
    const slots = byHash.get(key) ?? [];
    const same = slots.find((s) => Buffer.compare(images[distinct[s]], img) === 0);
    if (same !== undefined) {
      slotOf[i] = same;
      return;
    }
    slotOf[i] = distinct.length;
    slots.push(distinct.length);
    byHash.set(key, slots);
    distinct.push(i);
  });
  return { distinct, slotOf };
}

/** insightface's log line, e.g. `[lfw][2000]Accuracy-Flip: 0.99783+-0.00269`. */
export function formatVerificationLine(
  name: string,
  step: number | string,
  r: { accuracy: number; std: number },
): string {
  return `[${name}][${step}]Accuracy-Flip: ${formatFixed(r.accuracy, 5)}+-${formatFixed(r.std, 5)}`;
}

/** insightface's XNorm line, e.g. `[lfw][2000]XNorm: 22.134510`. */
export function formatXNormLine(name: string, step: number | string, r: { xnorm: number }): string {
  return `[${name}][${step}]XNorm: ${formatFixed(r.xnorm, 6)}`;
}
