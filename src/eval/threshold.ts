// The verification threshold that travels with an exported model: the cosine-similarity cut that best
// separates a verification set's pairs, chosen on the plain (unflipped) embeddings that loadEmbedder()
// and the browser verifier compute, and recorded in model.json's metadata under `verification`.
import { AttfcError } from '../errors.js';

/** What model.json records under userDefinedMetadata.verification. */
export interface VerificationThreshold {
  /** A pair is "same" when the cosine similarity of its two L2-normalised embeddings is >= threshold. */
  threshold: number;
  /** Name of the verification set the threshold was chosen on. */
  set: string;
  /** That set's file, as given to attfc. */
  file?: string;
  pairs: number;
  /** Share of that set's pairs the threshold classifies correctly (chosen on the same pairs). */
  accuracy: number;
  /** 'attfc eval' or 'training' (verification at the last training step). */
  chosenBy: string;
  /** Training step of the model when known. */
  step?: number;
}

/**
 * Cosine similarity of pair i's two embeddings: rows 2i and 2i+1 of `emb` ([2P, dim], row-major, not
 * necessarily normalised), computed in float64. A zero row has similarity 0 to anything.
 */
export function pairCosineSimilarities(emb: ArrayLike<number>, dim: number): Float64Array {
  const pairs = Math.floor(emb.length / dim / 2);
  const out = new Float64Array(pairs);
  for (let p = 0; p < pairs; p++) {
    const a = 2 * p * dim;
    const b = a + dim;
    let ab = 0;
    let aa = 0;
    let bb = 0;
    for (let k = 0; k < dim; k++) {
      ab += emb[a + k] * emb[b + k];
      aa += emb[a + k] * emb[a + k];
      bb += emb[b + k] * emb[b + k];
    }
    const norm = Math.sqrt(aa) * Math.sqrt(bb);
    out[p] = norm > 0 ? ab / norm : 0;
  }
  return out;
}

/**
 * The similarity threshold with the highest accuracy on these pairs ("same" iff similarity >= threshold).
 * Every cut between two distinct sorted similarities is tried; among equally accurate cuts the strictest
 * (highest threshold, fewest false accepts) wins. The threshold sits halfway between the two
 * similarities it separates.
 */
export function bestSimilarityThreshold(similarities: ArrayLike<number>, issame: ArrayLike<boolean>): { threshold: number; accuracy: number } {
  const n = similarities.length;
  if (n !== issame.length) throw new Error(`bestSimilarityThreshold: ${n} similarities, ${issame.length} labels`);
  if (n === 0) throw new AttfcError('cannot choose a verification threshold without pairs');
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => similarities[j] - similarities[i]);
  const s = order.map((i) => similarities[i]);
  let negatives = 0;
  for (let i = 0; i < n; i++) if (!issame[i]) negatives++;
  // Accepting the k most similar pairs: correct = same pairs accepted + different pairs rejected.
  let correct = negatives;
  let best = correct;
  let bestK = 0;
  for (let k = 1; k <= n; k++) {
    correct += issame[order[k - 1]] ? 1 : -1;
    if (k < n && s[k] === s[k - 1]) continue; // equal similarities cannot be separated
    if (correct > best) {
      best = correct;
      bestK = k;
    }
  }
  let threshold: number;
  if (bestK === 0) threshold = s[0] + 1e-6;
  else if (bestK === n) threshold = s[n - 1];
  else {
    threshold = s[bestK] + (s[bestK - 1] - s[bestK]) / 2;
    if (!(threshold > s[bestK])) threshold = s[bestK - 1]; // adjacent doubles: the midpoint rounds onto s[k]
  }
  return { threshold, accuracy: best / n };
}

/**
 * The recorded threshold in a model's metadata, or null when it has none. `where` names the model in
 * the error for a malformed record.
 */
export function readVerificationThreshold(metadata: Record<string, unknown>, where: string): VerificationThreshold | null {
  const v = metadata.verification;
  if (v === undefined || v === null) return null;
  const r = v as Partial<VerificationThreshold>;
  if (typeof v !== 'object' || typeof r.threshold !== 'number' || !Number.isFinite(r.threshold))
    throw new AttfcError(`${where}: userDefinedMetadata.verification.threshold must be a number (the cosine similarity cut), got ${JSON.stringify(v)}`);
  return r as VerificationThreshold;
}

/** One line for people: the rule and where it came from. */
export function describeThreshold(t: VerificationThreshold): string {
  const acc = Number.isFinite(t.accuracy) ? `, accuracy ${t.accuracy.toFixed(5)} on them` : '';
  return `same face if cosine similarity >= ${t.threshold.toFixed(5)} (chosen on ${t.set}, ${t.pairs} pairs${acc})`;
}

/** The metadata record for a verification result's threshold. */
export function thresholdRecord(
  r: { name: string; pairs: number; threshold: { similarity: number; accuracy: number } },
  info: { file?: string; chosenBy: string; step?: number },
): VerificationThreshold {
  return { threshold: r.threshold.similarity, set: r.name, file: info.file, pairs: r.pairs, accuracy: r.threshold.accuracy, chosenBy: info.chosenBy, step: info.step };
}
