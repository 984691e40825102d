// The class encoder f_k: a copy of the trained backbone f_q that follows it by an exponential moving
// average instead of gradients, and embeds the key images the GCCs are built from.
import * as tf from '@tensorflow/tfjs-core';
import { AttfcError } from '../../errors.js';
import { emaUpdate } from '../../engine/ema.js';
import type { Backbone, NamedVariable } from '../../backbones/types.js';

/** The paper's EMA momentum m. */
export const DEFAULT_CLASS_ENCODER_MOMENTUM = 0.999;

export interface ClassEncoderState {
  momentum: number;
}

/**
 * theta_k <- m * theta_k + (1 - m) * theta_q over the 'param' and 'frozen' variables; f_k's batch-norm
 * running statistics ('buffer') are its own, computed in training mode on its key batches.
 */
export class ClassEncoder {
  private m: number;
  private readonly pairs: Array<{ k: tf.Variable; q: tf.Variable }> = [];

  /**
   * Makes `fk` an exact copy of `fq` (both must be the same architecture). fk's variables are marked
   * non-trainable so that a tf.variableGrads() without an explicit list never touches them.
   */
  constructor(
    readonly fq: Backbone,
    readonly fk: Backbone,
    momentum = DEFAULT_CLASS_ENCODER_MOMENTUM,
  ) {
    if (fq === fk) throw new Error('ClassEncoder: f_q and f_k must be two backbone instances');
    this.m = ClassEncoder.checkMomentum(momentum);
    fk.copyFrom(fq);
    const qv = fq.variables();
    const kv = fk.variables();
    if (qv.length !== kv.length)
      throw new Error(`ClassEncoder: f_q has ${qv.length} variables, f_k ${kv.length}; they must be the same architecture`);
    qv.forEach((q: NamedVariable, i: number) => {
      const k = kv[i];
      if (q.name !== k.name || q.kind !== k.kind || !tf.util.arraysEqual(q.variable.shape, k.variable.shape))
        throw new Error(`ClassEncoder: variable ${i} differs (${q.name} ${q.kind} [${q.variable.shape}] vs ${k.name} ${k.kind} [${k.variable.shape}])`);
      k.variable.trainable = false;
      if (q.kind !== 'buffer') this.pairs.push({ k: k.variable, q: q.variable });
    });
  }

  get momentum(): number {
    return this.m;
  }

  /** One EMA step of every 'param' and 'frozen' variable of f_k towards f_q. Call before embed(). */
  update(): void {
    emaUpdate(
      this.pairs.map((p) => p.k),
      this.pairs.map((p) => p.q),
      this.m,
    );
  }

  /**
   * Raw (un-normalised) key embeddings [N, D] = f_k(keys) with training-mode batch norm (f_k's own
   * batch statistics; updates its running statistics). Constants for the loss: the trainer must call
   * this OUTSIDE tf.variableGrads / any gradient tape; it throws when a tape is recording.
   */
  embed(keys: tf.Tensor4D): tf.Tensor2D {
    if (tf.engine().isTapeOn())
      throw new Error('ClassEncoder.embed: called while a gradient tape records; call it before tf.variableGrads (f_k gets no gradients)');
    return this.fk.apply(keys, true);
  }

  /** The momentum; f_k's variables are checkpointed by the trainer through fk.variables(). */
  getState(): ClassEncoderState {
    return { momentum: this.m };
  }

  setState(s: ClassEncoderState): void {
    this.m = ClassEncoder.checkMomentum(s.momentum);
  }

  private static checkMomentum(m: number): number {
    if (!(typeof m === 'number' && m >= 0 && m <= 1))
      throw new AttfcError(`attfc: class-encoder momentum must be a number in [0, 1] (got ${String(m)})`);
    return m;
  }
}
