// What evaluation needs from a model: a fixed square input size and a batch -> raw embeddings map.
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { AttfcError } from '../errors.js';
import { firstNonFinite } from '../util/finite.js';

/** A face-embedding model in inference mode. */
export interface Embedder {
  /** Square input side in pixels (112 for insightface models). */
  readonly inputSize: number;
  /** Raw (un-normalised) embeddings [N, D] of NHWC images normalised to (x/255-0.5)/0.5. */
  embed(batch: tf.Tensor4D): tf.Tensor2D;
}

/** Wraps a tfjs-layers model (e.g. from loadEmbeddingModel); predict() runs BN/dropout in inference mode. */
export function embedderFromLayersModel(model: tfl.LayersModel, inputSize: number): Embedder {
  return {
    inputSize,
    embed: (batch) => {
      const out = model.predict(batch);
      if (Array.isArray(out)) throw new Error('embedding model must have exactly one output');
      if (out.rank !== 2) throw new Error(`embedding model output has rank ${out.rank}, expected [N, D]`);
      return out as tf.Tensor2D;
    },
  };
}

/** Raw embeddings of a batch, row-major [n, dim]. */
export interface EmbeddedBatch {
  dim: number;
  orig: Float32Array;
  /** Embeddings of the horizontally mirrored images (only from embedBatchWithFlip). */
  flip?: Float32Array;
}

function checkBatch(pixels: Float32Array, n: number, size: number): void {
  if (pixels.length !== n * size * size * 3)
    throw new Error(`embedding batch has ${pixels.length} values, expected ${n}x${size}x${size}x3`);
}

/**
 * The rows of a batch's embeddings; a NaN or infinite value (a diverged model, or one whose outputs
 * overflow float32) is an AttfcError naming the image (`describe(row)`), never a result.
 */
async function readRows(t: tf.Tensor2D, n: number, describe: (row: number) => string): Promise<{ dim: number; values: Float32Array }> {
  if (t.shape[0] !== n) throw new Error(`embedding model returned ${t.shape[0]} rows for ${n} images`);
  const values = Float32Array.from((await t.data()) as Float32Array);
  const bad = firstNonFinite(values);
  if (bad >= 0) throw new AttfcError(`the model produced a non-finite embedding (${values[bad]}) for ${describe(Math.floor(bad / t.shape[1]))}; it cannot be used`);
  return { dim: t.shape[1], values };
}

const rowOfBatch = (row: number) => `image ${row} of a batch`;

/** Embeds n normalised NHWC images (pixels from normalizeBatch); `describe` names row i in errors. */
export async function embedBatch(embedder: Embedder, pixels: Float32Array, n: number, describe: (row: number) => string = rowOfBatch): Promise<EmbeddedBatch> {
  const size = embedder.inputSize;
  checkBatch(pixels, n, size);
  const out = tf.tidy(() => embedder.embed(tf.tensor4d(pixels, [n, size, size, 3])));
  try {
    const { dim, values } = await readRows(out, n, describe);
    return { dim, orig: values };
  } finally {
    out.dispose();
  }
}

/** Embeds n normalised NHWC images and their horizontal mirror images (insightface's flip test). */
export async function embedBatchWithFlip(embedder: Embedder, pixels: Float32Array, n: number): Promise<EmbeddedBatch> {
  const size = embedder.inputSize;
  checkBatch(pixels, n, size);
  const [a, b] = tf.tidy(() => {
    const x = tf.tensor4d(pixels, [n, size, size, 3]);
    return [embedder.embed(x), embedder.embed(tf.reverse(x, 2))];
  });
  try {
    const o = await readRows(a, n, rowOfBatch);
    const f = await readRows(b, n, (row) => `the mirror image of image ${row} of a batch`);
    return { dim: o.dim, orig: o.values, flip: f.values };
  } finally {
    a.dispose();
    b.dispose();
  }
}
