// A saved model folder as an Embedder for inference (attfc eval, attfc embed, loadEmbedder). On backend
// torch a model attfc wrote (its metadata names the backbone) runs as the backbone's native graph with
// every batch norm folded into the convolution before it: no tape, no per-layer round trips. Elsewhere,
// and for layers models attfc did not write, the tfjs-layers model runs as tf.loadLayersModel would.
// Both compute the same function; this module never changes a model.
import type * as tfl from '@tensorflow/tfjs-layers';
import { backboneFromLayersModel, loadEmbeddingModel, type Backbone } from '../backbones/index.js';
import { nativeGraphActive } from '../engine/torch/graph.js';
import { AttfcError } from '../errors.js';
import { embedderFromLayersModel, type Embedder } from './embedder.js';

export interface LoadedEmbedder {
  embedder: Embedder;
  embeddingSize: number;
  metadata: Record<string, unknown>;
  /** Which engine path embeds: the backbone's native graph, or the tfjs-layers model. */
  runs: 'native graph' | 'layers model';
  dispose(): void;
}

/** The model's square input side: its metadata, else its input shape. */
function inputSizeOf(model: tfl.LayersModel, metadata: Record<string, unknown>, dir: string): number {
  const fromMeta = metadata.inputSize;
  const shape = model.inputs[0]?.shape;
  const fromShape = shape && shape[1] === shape[2] ? shape[1] : null;
  const inputSize = typeof fromMeta === 'number' ? fromMeta : fromShape;
  if (typeof inputSize !== 'number' || !Number.isInteger(inputSize) || inputSize <= 0)
    throw new AttfcError(`${dir}/model.json: cannot tell the input size (no userDefinedMetadata.inputSize, input shape ${JSON.stringify(shape)})`);
  return inputSize;
}

/** Loads an attfc embedding model directory (model.json + weights) as an Embedder. */
export async function loadModelEmbedder(dir: string): Promise<LoadedEmbedder> {
  const { model, metadata } = await loadEmbeddingModel(dir);
  let inputSize: number;
  try {
    inputSize = inputSizeOf(model, metadata, dir);
  } catch (e) {
    model.dispose();
    throw e;
  }
  const embeddingSize = Number((model.outputs[0].shape as number[])[1]);
  if (nativeGraphActive() && typeof metadata.backbone === 'string') {
    let backbone: Backbone;
    try {
      backbone = backboneFromLayersModel(model, metadata, `${dir}/model.json`);
    } finally {
      model.dispose();
    }
    return {
      embedder: { inputSize, embed: (x) => backbone.apply(x, false) },
      embeddingSize,
      metadata,
      runs: 'native graph',
      dispose: () => backbone.dispose(),
    };
  }
  return { embedder: embedderFromLayersModel(model, inputSize), embeddingSize, metadata, runs: 'layers model', dispose: () => model.dispose() };
}
