// Saving a trained backbone as a self-contained TensorFlow.js embedding model and loading it back.
import * as tfl from '@tensorflow/tfjs-layers';
import path from 'node:path';
import { AttfcError } from '../errors.js';
import { nonFiniteValue } from '../util/finite.js';
import { fileLoadHandler, fileSaveHandler } from './fileIO.js';
import { toLayersModel } from './layersExport.js';
import type { Backbone } from './types.js';

/** Input normalisation every attfc backbone expects, recorded in the saved metadata. */
export const INPUT_NORMALIZATION = '(x/255-0.5)/0.5';

/**
 * Writes dir/model.json + dir/weights.bin (a standard layers model: `tf.loadLayersModel` runs it
 * without attfc). The metadata records the backbone facts; caller keys (e.g. attfcVersion) add to or override them.
 */
export async function saveEmbeddingModel(b: Backbone, dir: string, metadata: Record<string, unknown>): Promise<void> {
  const model = toLayersModel(b);
  try {
    const full = {
      backbone: b.name,
      inputSize: b.options.inputSize,
      inputLayout: 'NHWC RGB',
      normalization: INPUT_NORMALIZATION,
      embeddingSize: b.options.embeddingSize,
      widthMultiplier: b.options.widthMultiplier,
      ...(b.options.mbfScale !== undefined ? { mbfScale: b.options.mbfScale } : {}),
      ...metadata,
    };
    await model.save(fileSaveHandler(dir, full));
  } finally {
    model.dispose();
  }
}

/**
 * Loads a model written by saveEmbeddingModel (or any layers model in dir/model.json) and its metadata.
 * A weight holding a NaN or an infinity (a diverged training) is an AttfcError: such a model embeds
 * every image to garbage.
 */
export async function loadEmbeddingModel(dir: string): Promise<{ model: tfl.LayersModel; metadata: Record<string, unknown> }> {
  const model = await tfl.loadLayersModel(fileLoadHandler(dir));
  for (const w of model.weights) {
    const bad = nonFiniteValue(w.read().dataSync() as Float32Array);
    if (bad) {
      model.dispose();
      throw new AttfcError(`${path.join(dir, 'weights.bin')}: weight ${w.originalName} holds a non-finite value (${bad}); the model diverged in training and cannot be used`);
    }
  }
  const metadata = (model.getUserDefinedMetadata() ?? {}) as Record<string, unknown>;
  return { model, metadata };
}
