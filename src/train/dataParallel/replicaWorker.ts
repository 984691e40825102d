// A data-parallel replica (rank >= 1) in its own worker thread with its own single-thread WASM instance
// (its own 4 GiB heap). Per step it embeds its rows of the batch with f_q, hands the embeddings to rank 0
// (which owns the head), receives d(loss)/d(embeddings) for those rows, back-propagates them through
// its f_q copy and hands back the gradients; rank 0 then broadcasts the updated parameters.
// For AttFC it also runs the class encoder f_k on its rows' key images; its f_k follows f_q by the same
// EMA as rank 0's, so the two stay bit-identical without being sent each step.
import * as tf from '@tensorflow/tfjs-core';
import { workerData } from 'node:worker_threads';
import { initEngine, wasmHeapBytes } from '../../engine/index.js';
import { heapView } from '../../engine/heapView.js';
import { createBackbone, type BackboneOptions } from '../../backbones/index.js';
import { ClassEncoder } from '../../heads/attfc/classEncoder.js';
import { isUserError } from '../../errors.js';
import { Command, Control, Phase, readRandomState, ReplicaShutdown, writeRandomState, type RowRange, type SharedBuffers } from './shared.js';
import { assignVariables, writeVariables } from './variables.js';

export interface ReplicaWorkerData {
  rank: number;
  buffers: SharedBuffers;
  rows: RowRange[];
  backbone: string;
  backboneOptions: BackboneOptions;
  /** AttFC: the class encoder's EMA momentum; null for heads without one. */
  emaMomentum: number | null;
}

async function main(d: ReplicaWorkerData): Promise<void> {
  const { rank, buffers } = d;
  const { layout } = buffers;
  const control = new Control(buffers);
  let seq = 0;
  const next = () => control.waitCommand(++seq);
  try {
    await initEngine({ backend: 'wasm', threads: 1, log: false });
    const fq = createBackbone(d.backbone, d.backboneOptions);
    const fk = d.emaMomentum === null ? null : createBackbone(d.backbone, d.backboneOptions);
    const encoder = fk ? new ClassEncoder(fq, fk, d.emaMomentum!) : null;
    const fqVars = fq.variables().map((v) => v.variable);
    const fkVars = fk ? fk.variables().map((v) => v.variable) : [];
    const trainable = fq.trainableVariables();
    const [start, end] = d.rows[rank];
    const rows = end - start;
    const size = d.backboneOptions.inputSize ?? 112;
    const { imageFloats: px, keysPerSample: k, embeddingSize: D } = layout;
    const queries = new Float32Array(buffers.queries);
    const keys = new Float32Array(buffers.keys);
    const embeddings = new Float32Array(buffers.embeddings);
    const keyEmbeddings = new Float32Array(buffers.keyEmbeddings);
    const embeddingGrads = new Float32Array(buffers.embeddingGrads);
    const gradients = new Float32Array(buffers.gradients, (rank - 1) * layout.trainableFloats * 4, layout.trainableFloats);
    const parameters = new Float32Array(buffers.parameters);
    control.passPhase(rank, Phase.Ready);

    const step = () => {
      if (encoder) {
        encoder.update();
        const ke = tf.tidy(() => encoder.embed(tf.tensor4d(keys.subarray(start * k * px, end * k * px), [rows * k, size, size, 3])));
        keyEmbeddings.set(heapView(ke), start * k * D);
        ke.dispose();
        control.passPhase(rank, Phase.Keys);
      }
      const x = tf.tensor4d(queries.subarray(start * px, end * px), [rows, size, size, 3]);
      const { value, grads } = tf.variableGrads(() => {
        const e = fq.apply(x, true);
        embeddings.set(e.dataSync(), start * D);
        control.passPhase(rank, Phase.Embeddings);
        const c = next();
        if (c !== Command.EmbeddingGradsReady) throw new ReplicaShutdown();
        const de = tf.tensor2d(embeddingGrads.slice(start * D, end * D), [rows, D]);
        return tf.sum(tf.mul(e, de)) as tf.Scalar;
      }, trainable);
      writeVariables(trainable.map((v) => grads[v.name]), gradients);
      tf.dispose([value, x, ...Object.values(grads)]);
      // this step's masks are drawn: the states rank 0 checkpoints after the step
      if (fq.randomState) writeRandomState(buffers, rank, 'fq', fq.randomState());
      if (fk?.randomState) writeRandomState(buffers, rank, 'fk', fk.randomState());
      control.reportHeap(rank, wasmHeapBytes());
      control.passPhase(rank, Phase.Gradients);
    };

    for (;;) {
      const c = next();
      if (c === Command.Exit) break;
      if (c === Command.Step) step();
      else if (c === Command.Parameters) assignVariables(fqVars, parameters);
      else if (c === Command.FullSync) {
        assignVariables(fkVars, parameters, assignVariables(fqVars, parameters));
        fq.setRandomState?.(readRandomState(buffers, rank, 'fq'));
        fk?.setRandomState?.(readRandomState(buffers, rank, 'fk'));
      }
      else throw new Error(`unexpected command ${c}`);
    }
  } catch (e) {
    if (!(e instanceof ReplicaShutdown)) control.fail(rank, (e as Error).message ?? String(e), isUserError(e));
  }
}

await main(workerData as ReplicaWorkerData);
