// Runs a model over a verification .bin set with insightface's protocol and reports the standard line.
import { AttfcError } from '../errors.js';
import { readVerificationBin, type VerificationSet } from './binReader.js';
import { embedBatchWithFlip, type Embedder } from './embedder.js';
import { decodeRgbSquare, normalizeBatch } from './images.js';
import { formatFixed } from './numeric.js';
import { verificationMetrics } from './verification.js';
import { bestSimilarityThreshold, pairCosineSimilarities } from './threshold.js';

export interface EvaluateBinOptions {
  /** Images decoded and embedded per step (each is embedded twice: original and mirrored). Default 32. */
  batchSize?: number;
  /** Called after every batch with images done / total images (2 per pair). */
  onProgress?: (done: number, total: number) => void;
  /** Set name in reports; default the file name without .bin. */
  name?: string;
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
  let orig: Float32Array | null = null;
  let flip: Float32Array | null = null;
  let dim = 0;
  for (let start = 0; start < total; start += batchSize) {
    const end = Math.min(total, start + batchSize);
    const rgb = await Promise.all(
      set.images.slice(start, end).map((img, k) => decodeRgbSquare(img, size, `${name} image ${start + k}`)),
    );
    const batch = await embedBatchWithFlip(embedder, normalizeBatch(rgb, size), end - start);
    if (!orig || !flip) {
      dim = batch.dim;
      orig = new Float32Array(total * dim);
      flip = new Float32Array(total * dim);
    }
    orig.set(batch.orig, start * dim);
    flip.set(batch.flip as Float32Array, start * dim);
    options.onProgress?.(end, total);
  }
  const m = verificationMetrics(orig as Float32Array, flip as Float32Array, set.issame, dim);
  const plain = bestSimilarityThreshold(pairCosineSimilarities(orig as Float32Array, dim), set.issame);
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
  };
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
