// The model folders bench:embed measures: seeded random weights, and batch-norm running statistics taken
// from training-mode forward passes over random images (a fresh network's running statistics, mean 0
// and variance 1, make IResNet-50's activations grow to 1e26 and MobileFaceNet's vanish at inference).
import * as tf from '@tensorflow/tfjs-core';
import { createBackbone, saveEmbeddingModel } from '../../src/backbones/index.js';
import { initEngine, shutdownEngine } from '../../src/engine/index.js';
import type { EmbedModelId } from './flags.js';

/** 40 forward passes move the running statistics 1 - 0.9^40 = 98.5% of the way to the batch statistics. */
const CALIBRATION_PASSES = 40;

export async function prepareEmbedModel(id: EmbedModelId, dir: string): Promise<void> {
  await initEngine({ log: false });
  const b = createBackbone(id, { inputSize: 112, seed: 0 });
  for (let i = 0; i < CALIBRATION_PASSES; i++)
    tf.tidy(() => {
      b.apply(tf.randomUniform([8, 112, 112, 3], -1, 1, 'float32', i) as tf.Tensor4D, true);
    });
  await saveEmbeddingModel(b, dir, { note: 'bench:embed: seeded random weights, running statistics from random images (not a trained model)' });
  b.dispose();
  shutdownEngine();
}
