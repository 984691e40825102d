// Saving a trained backbone as a self-contained TensorFlow.js embedding model and loading it back.
import * as tfl from '@tensorflow/tfjs-layers';
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

/** Loads a model written by saveEmbeddingModel (or any layers model in dir/model.json) and its metadata. */
export async function loadEmbeddingModel(dir: string): Promise<{ model: tfl.LayersModel; metadata: Record<string, unknown> }> {
  const model = await tfl.loadLayersModel(fileLoadHandler(dir));
  const metadata = (model.getUserDefinedMetadata() ?? {}) as Record<string, unknown>;
  return { model, metadata };
}
