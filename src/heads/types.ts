// The one interface every classification head implements, so the trainer treats FC, Partial FC and
// AttFC alike.
import type * as tf from '@tensorflow/tfjs-core';

export type HeadKind = 'fc' | 'pfc' | 'attfc';

export interface HeadInput {
  /** Raw (un-normalised) query embeddings from the trained encoder f_q, [B, D]; differentiable. */
  embeddings: tf.Tensor2D;
  /** Identity label of each query, length B. */
  labels: Int32Array;
  /**
   * AttFC only: raw embeddings of the key images from the class encoder f_k, [B*(K-1), D]; key j of
   * sample i is row i*(K-1)+j. Constants (no gradient flows into them).
   */
  keyEmbeddings?: tf.Tensor2D;
  /** Optional per-key image quality in [0,1] (synthetic data), for attention diagnostics. */
  keyQuality?: Float32Array;
}

/** SGD settings the trainer passes to heads that update their own state. */
export interface SgdSettings {
  lr: number;
  momentum: number;
  /** Added to the gradient before momentum (PyTorch SGD semantics). */
  weightDecay: number;
}

/** Checkpointable head state: typed arrays by name plus JSON-able scalars. */
export interface HeadState {
  arrays: Record<string, Float32Array | Int32Array>;
  json: Record<string, unknown>;
}

/**
 * What a head split across the ranks of a distributed run (--shard-head) adds to the Head contract. Its
 * variables hold this rank's shard, so their gradients are its own: the trainer sums none of them over
 * the ranks. getState() is a collective (every rank calls it, at the same point): rank 0 receives the
 * whole state in the one-process head's format, the other ranks an empty one; setState() is given a
 * whole state (of any world size, sharded or not) and keeps this rank's part.
 */
export interface HeadSharding {
  readonly rank: number;
  readonly worldSize: number;
  /** A row-per-class slot of one of trainableVariables() (the optimizer's momentum for FC's W) made whole, on rank 0; null elsewhere. Every rank calls it. */
  gatherTrainable(index: number, local: Float32Array): Float32Array | null;
  /** This rank's rows of such a whole slot (checks its size). */
  sliceTrainable(index: number, whole: Float32Array): Float32Array;
  /** What this rank holds, for the run's description: 'classes 0..11 of 24', 'DCC slots 0..7 of 16'. */
  describe(): string;
}

export interface Head {
  readonly kind: HeadKind;
  readonly numClasses: number;
  readonly embeddingSize: number;
  /** Set when the head is split across the ranks (see HeadSharding); absent for a whole (replicated) head. */
  readonly sharding?: HeadSharding;
  /** Called before the gradient pass, outside any tape (e.g. Partial FC samples and uploads its columns). */
  prepare(labels: Int32Array): void;
  /** The batch loss; called inside the trainer's gradient function. */
  loss(input: HeadInput): tf.Scalar;
  /** Persistent variables the trainer's optimizer updates like backbone weights (FullFC's W). */
  trainableVariables(): tf.Variable[];
  /** Per-step variables whose gradients the head applies itself in afterStep (Partial FC's sampled W). */
  stepVariables(): tf.Variable[];
  /**
   * After backward and the optimizer step: apply head-managed updates (`stepGrads` in the order of
   * stepVariables()) and do end-of-step bookkeeping (AttFC enqueues its GCCs here, after the loss).
   */
  afterStep(stepGrads: tf.Tensor[], sgd: SgdSettings): void;
  /** Numbers from the last loss() for logs: positive cosine, hardest negative, attention stats, ... */
  diagnostics(): Record<string, number>;
  /** Numbers about the head's state as it is now (the same on every rank), read after afterStep(): AttFC's DCC fill. */
  stateDiagnostics?(): Record<string, number>;
  /** Bytes of head parameters + optimizer state + buffers, wherever they live (heap or JS). */
  stateBytes(): number;
  getState(): HeadState;
  setState(s: HeadState): void;
  dispose(): void;
}
