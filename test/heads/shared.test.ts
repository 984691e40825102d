// The checks every head shares: sizes at construction, labels and embedding shapes at each loss.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { setupEngine } from '../helpers/engine.js';
import { FullFcHead } from '../../src/heads/fullFc.js';
import { PartialFcHead } from '../../src/heads/partialFc.js';
import { AttFcHead } from '../../src/heads/attfc/index.js';
import { AttfcError } from '../../src/errors.js';
import type { Head } from '../../src/heads/types.js';

await setupEngine();

const make = {
  fc: (numClasses: number, embeddingSize: number) => new FullFcHead({ numClasses, embeddingSize, seed: 0, batchSize: 2 }),
  pfc: (numClasses: number, embeddingSize: number) => new PartialFcHead({ numClasses, embeddingSize, sampleRate: 0.5, seed: 0, batchSize: 2 }),
  attfc: (numClasses: number, embeddingSize: number) => new AttFcHead({ numClasses, embeddingSize, batchSize: 2, sampleNum: 2, queueSize: 4, seed: 0 }),
};

test('every head refuses unusable sizes, bad labels and misshapen embeddings with errors naming it', () => {
  for (const [kind, build] of Object.entries(make)) {
    assert.throws(() => build(1, 4), (e: unknown) => e instanceof AttfcError && e.message === `head ${kind}: numClasses must be a whole number >= 2 (got 1)`);
    assert.throws(() => build(8, 0), (e: unknown) => e instanceof AttfcError && e.message.startsWith(`head ${kind}: embeddingSize must be`));
    const head: Head = build(8, 4);
    const labels = Int32Array.from([1, 8]);
    const embeddings = tf.zeros([2, 4]) as tf.Tensor2D;
    const keyEmbeddings = tf.zeros([2, 4]) as tf.Tensor2D;
    const wrongShape = tf.zeros([2, 3]) as tf.Tensor2D;
    try {
      assert.throws(
        () => {
          head.prepare(labels);
          head.loss({ embeddings, labels, keyEmbeddings });
        },
        (e: unknown) => e instanceof AttfcError && e.message.startsWith(`head ${kind}: label 8 (batch row 1) is not a class id in 0..7`),
      );
      const ok = Int32Array.from([1, 2]);
      assert.throws(
        () => {
          head.prepare(ok);
          head.loss({ embeddings: wrongShape, labels: ok, keyEmbeddings });
        },
        new RegExp(`^Error: head ${kind}: embeddings are \\[2, 3\\], expected \\[2, 4\\]`),
      );
    } finally {
      tf.dispose([embeddings, keyEmbeddings, wrongShape]);
      head.dispose();
    }
  }
});
