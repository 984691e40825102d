// One bench:embed engine on one model, in its own process: images/s of batch inference on the same
// seeded batch of normalised images, and the first images' embeddings (the parent checks that every
// engine computes the same function). attfc runs the model folder the way `attfc embed` loads it
// (src/eval/modelEmbedder.ts); onnxruntime-node runs the folder's model.onnx from `attfc export --onnx`.
import * as tf from '@tensorflow/tfjs-core';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { initEngine, shutdownEngine } from '../../src/engine/index.js';
import { loadModelEmbedder } from '../../src/eval/modelEmbedder.js';
import { Rng } from '../../src/util/rng.js';
import type { EmbedChildFlags } from './flags.js';

/** Embeddings of the first images returned for the agreement check. */
export const PROBE_IMAGES = 2;

function nhwcToNchw(nhwc: Float32Array, n: number, size: number): Float32Array {
  const out = new Float32Array(nhwc.length);
  const plane = size * size;
  for (let b = 0; b < n; b++)
    for (let p = 0; p < plane; p++) for (let c = 0; c < 3; c++) out[b * 3 * plane + c * plane + p] = nhwc[b * 3 * plane + p * 3 + c];
  return out;
}

export async function runEmbedChild(f: EmbedChildFlags): Promise<void> {
  const meta = JSON.parse(readFileSync(path.join(f.dir, 'model.json'), 'utf8')).userDefinedMetadata as { inputSize: number; embeddingSize: number };
  const size = meta.inputSize;
  const rng = new Rng(7);
  // normalised pixels, (x/255 - 0.5)/0.5, in [-1, 1]
  const pixels = Float32Array.from({ length: f.batch * size * size * 3 }, () => rng.uniform(-1, 1));
  let embedOnce: () => Promise<Float32Array>;
  let runs: string;
  if (f.engine === 'onnxruntime') {
    const ort = await import('onnxruntime-node');
    const session = await ort.InferenceSession.create(path.join(f.dir, 'model.onnx'), {
      intraOpNumThreads: 2,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    });
    const nchw = nhwcToNchw(pixels, f.batch, size);
    embedOnce = async () => {
      const r = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', nchw, [f.batch, 3, size, size]) });
      return r[session.outputNames[0]].data as Float32Array;
    };
    runs = 'model.onnx, graph optimisation level all, 2 intra-op threads';
  } else {
    await initEngine({ backend: f.engine, threads: 2, log: false });
    const loaded = await loadModelEmbedder(f.dir);
    embedOnce = async () => {
      const out = tf.tidy(() => loaded.embedder.embed(tf.tensor4d(pixels, [f.batch, size, size, 3])));
      const data = (await out.data()) as Float32Array;
      out.dispose();
      return data;
    };
    runs = `${loaded.runs}, 2 threads`;
  }
  const first = await embedOnce();
  let batches = 0;
  const t0 = performance.now();
  while (batches < 3 || performance.now() - t0 < f.seconds * 1000) {
    await embedOnce();
    batches++;
  }
  const seconds = (performance.now() - t0) / 1000;
  console.log(JSON.stringify({ imagesPerSecond: (batches * f.batch) / seconds, batches, seconds, runs, probe: Array.from(first.subarray(0, PROBE_IMAGES * meta.embeddingSize)) }));
  if (f.engine !== 'onnxruntime') shutdownEngine();
}
