// One optimisation step on one batch: (AttFC) EMA update of f_k and the key forward, then the head's
// loss on f_q's embeddings under a gradient tape, backward, clipping of the backbone gradients, SGD, and
// the head's own updates. Data parallelism hangs off the exchange's hooks (dataParallel/exchange.ts):
// WASM replicas join their rows' embeddings and gradients into rank 0's step; ranks of a process group
// each run this step on their own rows and sum their gradients. Every tensor made here is disposed
// here. The step also says where its time went (the kernels run synchronously, so wall-clock marks
// between the parts measure them).
import * as tf from '@tensorflow/tfjs-core';
import type { Backbone } from '../backbones/index.js';
import type { Batch } from '../data/pipeline.js';
import type { ClassEncoder } from '../heads/attfc/index.js';
import type { Head } from '../heads/types.js';
import { AttfcError } from '../errors.js';
import type { TrainConfig } from './config.js';
import { Sgd, clipByGlobalNorm } from './sgd.js';
import type { GradientExchange, StepReport } from './dataParallel/exchange.js';

/** The optimizer over f_q's weights and the head's persistent variables (FullFC's W), in that order. */
export function createOptimizer(c: TrainConfig, fq: Backbone, head: Head): Sgd {
  return new Sgd([...fq.trainableVariables(), ...head.trainableVariables()], { momentum: c.momentum, weightDecay: c.weightDecay });
}

export interface StepModel {
  config: TrainConfig;
  fq: Backbone;
  head: Head;
  /** From createOptimizer. */
  sgd: Sgd;
  encoder: ClassEncoder | null;
  group: GradientExchange | null;
  /** Rows of the batch rank 0 computes, and key images per sample. */
  localBatch: number;
  keysPerSample: number;
}

/** Seconds of one step by part (the data wait is the trainer's). */
export interface StepPartTimes {
  /** AttFC: the EMA update of f_k and the forward of the key images. */
  classEncoder: number;
  /** f_q forward and backward (with replicas: waiting for theirs), gradient clipping and SGD. */
  backbone: number;
  /** Of `backbone`: waiting for the other ranks' gradients after the backward pass (communication not hidden by it). */
  gradientWait: number;
  /** The head's loss and its backward, and its own updates after the step (AttFC: enqueuing the GCCs). */
  head: number;
}

/**
 * Identity on the embeddings whose gradient marks when backward leaves the head: the tape runs its
 * gradients in reverse order, so every head operation (recorded after this one) is done by then.
 */
function markBackward(x: tf.Tensor2D, onGradient: () => void): tf.Tensor2D {
  const mark = tf.customGrad((input) => ({
    value: tf.clone(input as tf.Tensor2D),
    gradFunc: (dy: tf.Tensor | tf.Tensor[]) => {
      onGradient();
      return tf.clone(dy as tf.Tensor);
    },
  })) as unknown as (t: tf.Tensor2D) => tf.Tensor2D;
  return mark(x);
}

export class TrainStep {
  private readonly backboneVars: tf.Variable[];
  private readonly sgdVars: tf.Variable[];

  constructor(private readonly m: StepModel) {
    this.backboneVars = m.fq.trainableVariables();
    this.sgdVars = [...this.backboneVars, ...m.head.trainableVariables()];
  }

  /**
   * Runs step `step` (0-based) at learning rate `lr`. A non-finite loss ends training with an error
   * naming `lastCheckpoint`. `stop`: this process was asked to stop; the result's `stop` says whether
   * any rank was (every rank then stops after this step).
   */
  run(
    batch: Batch,
    lr: number,
    step: number,
    lastCheckpoint: string | null,
    stop = false,
  ): { loss: number; gradNorm: number; times: StepPartTimes; diagnostics: Record<string, number>; stop: boolean } {
    const { config: c, fq, head, sgd, encoder, group, localBatch, keysPerSample } = this.m;
    const labels = batch.labels;
    const now = () => performance.now();
    const t0 = now();
    // rank 0 computes rows [0, localBatch); with replicas, the others go to the workers
    group?.postStep(batch.images, encoder ? batch.keys : null);
    const px = c.inputSize * c.inputSize * 3;
    const x = tf.tensor4d(batch.images.subarray(0, localBatch * px), [localBatch, c.inputSize, c.inputSize, 3]);
    let keyEmb: tf.Tensor2D | undefined;
    const tEncoder = now();
    if (encoder) {
      // EMA first, then the key forward with the updated class encoder (outside any gradient tape).
      encoder.update();
      const n = localBatch * keysPerSample;
      keyEmb = tf.tidy(() => encoder.embed(tf.tensor4d(batch.keys.subarray(0, n * px), [n, c.inputSize, c.inputSize, 3])));
      if (group) keyEmb = group.gatherKeyEmbeddings(keyEmb);
    }
    const tEncoderEnd = now();
    // the head's choices come from the whole batch (Partial FC's classes); its loss from the rows it sees
    head.prepare(batch.batchLabels);
    const stepVars = head.stepVariables();
    let tBackboneForward = 0;
    let tHeadForward = 0;
    let tHeadBackward = 0;
    const { value, grads } = tf.variableGrads(() => {
      const local = fq.apply(x, true);
      const joined = group ? group.joinEmbeddings(local) : local;
      tBackboneForward = now();
      const embeddings = markBackward(joined, () => (tHeadBackward = now()));
      const headLoss = head.loss({ embeddings, labels, keyEmbeddings: keyEmb, keyQuality: batch.keyQuality });
      tHeadForward = now();
      return headLoss;
    }, [...this.sgdVars, ...stepVars]);
    const tBackward = now();
    const ownLoss = value.dataSync()[0];
    value.dispose();
    x.dispose();
    keyEmb?.dispose();
    const headGrads = [...head.trainableVariables(), ...stepVars].map((v) => grads[v.name]);
    // the gradients summed over the ranks (the buckets of a process group were already on their way);
    // a sharded head's are its own shard's, complete already
    const backboneGrads = this.backboneVars.map((v) => grads[v.name]);
    const reduced = !group
      ? { backbone: backboneGrads, head: headGrads }
      : head.sharding
        ? { backbone: group.reduceGradients(backboneGrads, []).backbone, head: headGrads }
        : group.reduceGradients(backboneGrads, headGrads);
    const tReduced = now();
    const own: StepReport = { loss: ownLoss, diagnostics: head.diagnostics(), stop };
    const report = group ? group.reduceStep(own) : own;
    const loss = report.loss;
    const made = new Set<tf.Tensor>([...Object.values(grads), ...reduced.backbone, ...reduced.head]);
    if (!Number.isFinite(loss)) {
      tf.dispose([...made]);
      throw new AttfcError(
        `loss is ${loss} at step ${step + 1} (lr ${lr.toExponential(3)}): training diverged; the last good checkpoint is ${lastCheckpoint ?? '(none yet)'}; lower --lr or add --warmup-steps`,
      );
    }
    const clipped = clipByGlobalNorm(reduced.backbone, c.clipNorm);
    const headTrained = head.trainableVariables().length;
    sgd.step([...clipped.grads, ...reduced.head.slice(0, headTrained)], lr);
    const tOptimizer = now();
    head.afterStep(reduced.head.slice(headTrained), { lr, momentum: c.momentum, weightDecay: c.weightDecay });
    const tHeadUpdate = now();
    tf.dispose([...clipped.grads.filter((g) => !made.has(g)), ...made]);
    group?.broadcastParameters();
    const tEnd = now();
    const headMs = tHeadForward - tBackboneForward + (tHeadBackward - tHeadForward) + (tHeadUpdate - tOptimizer);
    const times: StepPartTimes = {
      classEncoder: (tEncoderEnd - tEncoder) / 1000,
      head: headMs / 1000,
      backbone: (tEnd - t0 - (tEncoderEnd - tEncoder) - headMs) / 1000,
      gradientWait: (tReduced - tBackward) / 1000,
    };
    if (tHeadBackward === 0 || tBackward < tHeadBackward) throw new Error('train step: the backward pass did not reach the backbone through the head');
    return { loss, gradNorm: clipped.norm, times, diagnostics: { ...report.diagnostics, ...head.stateDiagnostics?.() }, stop: report.stop };
  }
}
