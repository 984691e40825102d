// What the heads (FullFC, PartialFC, AttFC) share: checks of their sizes and of each batch's labels and
// embeddings, with errors naming the head, and the holder of the last loss's cosine diagnostics.
import * as tf from '@tensorflow/tfjs-core';
import { AttfcError } from '../errors.js';
import type { HeadKind } from './types.js';

/** Throws AttfcError (user error: the labels come from the data) unless every label is a class id. */
export function assertLabelsInRange(labels: Int32Array, numClasses: number, head: HeadKind): void {
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i];
    if (!(y >= 0 && y < numClasses))
      throw new AttfcError(`head ${head}: label ${y} (batch row ${i}) is not a class id in 0..${numClasses - 1}; check num-classes against the dataset`);
  }
}

/** Throws AttfcError unless the head sizes are usable. */
export function assertHeadSizes(numClasses: number, embeddingSize: number, head: HeadKind): void {
  if (!(Number.isInteger(numClasses) && numClasses >= 2))
    throw new AttfcError(`head ${head}: numClasses must be a whole number >= 2 (got ${numClasses})`);
  if (!(Number.isInteger(embeddingSize) && embeddingSize >= 1))
    throw new AttfcError(`head ${head}: embeddingSize must be a whole number >= 1 (got ${embeddingSize})`);
}

/** Checks that the embeddings are [labels.length, embeddingSize]. */
export function assertEmbeddings(embeddings: tf.Tensor2D, labels: Int32Array, embeddingSize: number, head: HeadKind): void {
  const [b, d] = embeddings.shape;
  if (b !== labels.length || d !== embeddingSize)
    throw new Error(`head ${head}: embeddings are [${b}, ${d}], expected [${labels.length}, ${embeddingSize}] (batch x embedding size)`);
}

/** Whether two label arrays are equal (loss() must see the rows of the batch prepare() saw). */
export function sameLabels(a: Int32Array, b: Int32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Keeps the last diagnostics tensor of a head alive until the next loss(), and reads it lazily. */
export class CosineDiagnostics {
  private stats: tf.Tensor1D | null = null;
  private cached: Record<string, number> | null = null;

  /** Replaces the kept stats with `stats` ([positiveCos, hardestNegCos]); call inside the loss's tidy. */
  set(stats: tf.Tensor1D): void {
    this.stats?.dispose();
    this.stats = tf.keep(stats);
    this.cached = null;
  }

  read(): Record<string, number> {
    if (!this.stats) return {};
    if (!this.cached) {
      const [positiveCos, hardestNegCos] = this.stats.dataSync();
      this.cached = { positiveCos, hardestNegCos };
    }
    return { ...this.cached };
  }

  dispose(): void {
    this.stats?.dispose();
    this.stats = null;
    this.cached = null;
  }
}
