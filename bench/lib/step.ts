// One full training step (backbone forward + ArcFace full-FC head + backward + clip + momentum SGD) on
// random inputs: the engine benchmark's end-to-end number.
import * as tf from '@tensorflow/tfjs-core';
import { createBackbone } from '../../src/backbones/index.js';
import { FullFcHead } from '../../src/heads/fullFc.js';
import { Sgd, clipByGlobalNorm } from '../../src/train/sgd.js';

export interface StepBench {
  step(): void;
  /** Flattened gradients of the last step (for data-parallel averaging). */
  variables: tf.Variable[];
  computeGrads(): tf.Tensor[];
  apply(grads: tf.Tensor[]): void;
  dispose(): void;
}

export function makeTrainStep(backbone: string, inputSize: number, batch: number, classes = 10000, seed = 0, widthMultiplier = 1): StepBench {
  const net = createBackbone(backbone, { inputSize, seed, widthMultiplier });
  const head = new FullFcHead({ numClasses: classes, embeddingSize: 512, seed });
  const variables = [...net.trainableVariables(), ...head.trainableVariables()];
  const sgd = new Sgd(variables, { momentum: 0.9, weightDecay: 5e-4 });
  const x = tf.randomNormal([batch, inputSize, inputSize, 3], 0, 1, 'float32', seed) as tf.Tensor4D;
  const labels = Int32Array.from({ length: batch }, (_, i) => (i * 7919) % classes);
  const computeGrads = () => {
    head.prepare(labels);
    const { value, grads } = tf.variableGrads(() => head.loss({ embeddings: net.apply(x, true), labels }), variables);
    value.dispose();
    return variables.map((v) => grads[v.name]);
  };
  const apply = (grads: tf.Tensor[]) => {
    const nb = net.trainableVariables().length;
    const clipped = clipByGlobalNorm(grads.slice(0, nb), 5);
    sgd.step([...clipped.grads, ...grads.slice(nb)], 0.1);
    head.afterStep([], { lr: 0.1, momentum: 0.9, weightDecay: 5e-4 });
    tf.dispose(clipped.grads);
  };
  return {
    variables,
    computeGrads,
    apply,
    step() {
      const g = computeGrads();
      apply(g);
      tf.dispose(g);
    },
    dispose() {
      sgd.dispose();
      head.dispose();
      net.dispose();
      x.dispose();
    },
  };
}
