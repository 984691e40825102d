// loadEmbedder(): the trained model as a function from face images to unit-length embeddings.
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from './engine/index.js';
import { loadModelEmbedder } from './eval/modelEmbedder.js';
import { decodeRgbSquare, normalizeBatch } from './eval/images.js';
import { readVerificationThreshold, type VerificationThreshold } from './eval/threshold.js';
import { AttfcError } from './errors.js';
import { firstNonFinite } from './util/finite.js';
import { alignLargestFace, noFaceMessage } from './face/detect.js';
import type { DetectedFace } from './face/pipeline.js';

export type ImageInput = Buffer | string | tf.Tensor3D | tf.Tensor4D;

/** Options of embed(): `align` treats Buffers and paths as photos (largest face detected and aligned first). */
export interface EmbedOptions {
  align?: boolean;
}

/** What verify() returns: the cosine similarity and whether it reaches the model's threshold. */
export interface Verification {
  similarity: number;
  same: boolean;
}

export interface FaceEmbedder {
  /** Square input side the model expects; images are resized to it. */
  readonly inputSize: number;
  readonly embeddingSize: number;
  /** Metadata saved with the model (backbone, normalisation, training run). */
  readonly metadata: Record<string, unknown>;
  /**
   * L2-normalised embeddings, one Float32Array per image. Buffers and paths are decoded with sharp
   * (any format it reads, converted to RGB and resized); tensors must already be normalised NHWC (or HWC).
   * With `{ align: true }` each Buffer or path is a photo: its largest face is detected, aligned to the
   * ArcFace template at the input size and embedded; a photo without a face is an error naming it.
   */
  embed(images: ImageInput | ImageInput[], options?: EmbedOptions): Promise<Float32Array[]>;
  /**
   * One photo's embedding: with `align` (default true) of its largest face, which is returned too
   * (face is null without align); null when align finds no face.
   */
  embedFace(image: Buffer | string, options?: EmbedOptions): Promise<{ embedding: Float32Array; face: DetectedFace | null } | null>;
  /** Cosine similarity of two embeddings. */
  similarity(a: Float32Array, b: Float32Array): number;
  /**
   * The verification threshold recorded with the model (by `attfc eval` or verification at the last
   * training step), or null when it has none.
   */
  readonly verification: VerificationThreshold | null;
  /**
   * Whether two faces are the same person: `same` is similarity >= the recorded threshold. Each
   * argument is an image (as for embed) or an embedding from embed(). Throws when the model has no threshold.
   */
  verify(a: ImageInput | Float32Array, b: ImageInput | Float32Array): Promise<Verification>;
  dispose(): void;
}

/** Loads a model exported by `attfc train` (a folder with model.json + weights). */
export async function loadEmbedder(dir: string, options: { batchSize?: number } = {}): Promise<FaceEmbedder> {
  await initEngine({ log: false });
  const loaded = await loadModelEmbedder(dir);
  const { metadata, embeddingSize } = loaded;
  const inputSize = loaded.embedder.inputSize;
  const batchSize = options.batchSize ?? 32;
  const verification = readVerificationThreshold(metadata, `${dir}/model.json`);
  const run = (x: tf.Tensor4D): Float32Array[] => {
    const flat = tf.tidy(() => {
      const e = loaded.embedder.embed(x);
      return tf.div(e, tf.maximum(tf.norm(e, 'euclidean', 1, true), 1e-12));
    });
    const data = flat.dataSync() as Float32Array;
    flat.dispose();
    const bad = firstNonFinite(data);
    if (bad >= 0) throw new AttfcError(`the model produced a non-finite embedding (${data[bad]}) for image ${Math.floor(bad / embeddingSize)} of a batch; it cannot be used`);
    return Array.from({ length: x.shape[0] }, (_, i) => data.slice(i * embeddingSize, (i + 1) * embeddingSize));
  };
  const checkShape = (x: tf.Tensor4D, what: string): tf.Tensor4D => {
    if (x.rank !== 4 || x.shape[1] !== inputSize || x.shape[2] !== inputSize || x.shape[3] !== 3)
      throw new AttfcError(`${what}: tensor shape [${x.shape}] is not [N,${inputSize},${inputSize},3] (or [${inputSize},${inputSize},3]), normalised (x/255-0.5)/0.5`);
    return x;
  };
  const similarity = (a: Float32Array, b: Float32Array): number => {
    if (a.length !== b.length) throw new AttfcError(`similarity: embeddings of ${a.length} and ${b.length} values`);
    let s = 0;
    for (let i = 0; i < a.length; i++) s += a[i] * b[i];
    return s;
  };
  const embedder: FaceEmbedder = {
    inputSize,
    embeddingSize,
    metadata,
    verification,
    async embed(images, options = {}) {
      if (images instanceof tf.Tensor && images.rank === 4) return run(checkShape(images as tf.Tensor4D, 'images'));
      const list = Array.isArray(images) ? images : [images];
      const out: Float32Array[] = [];
      let pending: { i: number; input: Buffer | string }[] = [];
      const describe = (p: { i: number; input: Buffer | string }) => (typeof p.input === 'string' ? p.input : `image ${p.i}`);
      const aligned = async (p: { i: number; input: Buffer | string }): Promise<Uint8Array> => {
        const { crop, width, height } = await alignLargestFace(p.input, inputSize, describe(p));
        if (!crop) throw new AttfcError(`${describe(p)}: ${noFaceMessage({ width, height })}`);
        return crop.data;
      };
      const flush = async () => {
        if (!pending.length) return;
        const rgb: Uint8Array[] = [];
        // detection runs on the model's engine: one photo at a time
        if (options.align) for (const p of pending) rgb.push(await aligned(p));
        else rgb.push(...(await Promise.all(pending.map((p) => decodeRgbSquare(p.input, inputSize, describe(p))))));
        const x = tf.tensor4d(normalizeBatch(rgb, inputSize), [rgb.length, inputSize, inputSize, 3]);
        run(x).forEach((e, k) => (out[pending[k].i] = e));
        x.dispose();
        pending = [];
      };
      for (let i = 0; i < list.length; i++) {
        const item = list[i];
        if (item instanceof tf.Tensor) {
          const x = (item.rank === 3 ? tf.expandDims(item, 0) : item) as tf.Tensor4D;
          if (x.shape[0] !== 1) throw new AttfcError(`image ${i}: a batch tensor [${item.shape}] inside a list; pass it on its own`);
          out[i] = run(checkShape(x, `image ${i}`))[0];
          if (x !== item) x.dispose();
        } else {
          pending.push({ i, input: item });
          if (pending.length >= batchSize) await flush();
        }
      }
      await flush();
      return out;
    },
    async embedFace(image, options = {}) {
      if (options.align === false) return { embedding: (await embedder.embed([image]))[0], face: null };
      const { crop, face } = await alignLargestFace(image, inputSize, typeof image === 'string' ? image : 'image');
      if (!crop) return null;
      const x = tf.tensor4d(normalizeBatch([crop.data], inputSize), [1, inputSize, inputSize, 3]);
      try {
        return { embedding: run(x)[0], face };
      } finally {
        x.dispose();
      }
    },
    similarity,
    async verify(a, b) {
      if (!verification)
        throw new AttfcError(
          `${dir}/model.json: the model has no verification threshold (userDefinedMetadata.verification); ` +
            `choose one with \`attfc eval --model ${dir} --bin <pairs.bin>\` or train with --verify`,
        );
      const pending = [a, b].filter((x): x is ImageInput => !(x instanceof Float32Array));
      const embedded = pending.length ? await embedder.embed(pending) : [];
      const [ea, eb] = [a, b].map((x) => (x instanceof Float32Array ? x : (embedded.shift() as Float32Array)));
      if (ea.length !== embeddingSize || eb.length !== embeddingSize)
        throw new AttfcError(`verify: embeddings must have ${embeddingSize} values, got ${ea.length} and ${eb.length}`);
      const s = similarity(ea, eb);
      return { similarity: s, same: s >= verification.threshold };
    },
    dispose() {
      loaded.dispose();
    },
  };
  return embedder;
}
