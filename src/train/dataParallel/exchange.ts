// What the training step needs from data parallelism, as an interface; the trainer depends on it only.
// Two implementations:
//   - ReplicaGroup (this folder): WASM worker threads over shared memory. Rank 0 owns the head, the
//     optimizer, the data and the checkpoints; the workers compute f_q (and f_k) on their rows, and the
//     whole batch's embeddings meet at rank 0's head.
//   - ProcessGroupExchange (../distributed): processes (on one machine or many) joined by a c10d process
//     group on backend torch. Every rank reads its own rows of the batch, computes their loss against
//     its replica of the head (or its shard, with a sharded head), and the gradients are summed by
//     bucketed allreduce, as PyTorch's DistributedDataParallel does.
import type * as tf from '@tensorflow/tfjs-core';

/** What one step reports, before and after reduction over the ranks. */
export interface StepReport {
  /** This process's share of the batch loss (after reduceStep: the whole batch's loss). */
  loss: number;
  /** Head diagnostics (means over this process's rows; after reduceStep: over the batch). */
  diagnostics: Record<string, number>;
  /** This process was asked to stop (after reduceStep: some process was; every rank stops together). */
  stop: boolean;
}

export interface GradientExchange {
  /** Rows of each batch this process's f_q computes: [0, localRows) of the batch it is handed. */
  readonly localRows: number;
  /** Hands the other ranks their rows of this step's query (and key) images (replicas only). */
  postStep(queries: Float32Array, keys: Float32Array | null): void;
  /** The key embeddings the head needs (replicas: rank 0's followed by the workers'; disposes `local`). */
  gatherKeyEmbeddings(local: tf.Tensor2D): tf.Tensor2D;
  /** Inside the gradient tape: the embeddings the head sees (replicas: the whole batch's, rank 0's rows first). */
  joinEmbeddings(local: tf.Tensor2D): tf.Tensor2D;
  /**
   * The step's gradients summed over the ranks, in the order given: the backbone's, and the head's
   * variables that every rank holds a replica of (FC's W, Partial FC's sampled W). Returns tensors the
   * caller disposes, which may be the inputs themselves (when nothing needed summing).
   */
  reduceGradients(backbone: tf.Tensor[], head: tf.Tensor[]): { backbone: tf.Tensor[]; head: tf.Tensor[] };
  /** The whole batch's report from every rank's (the same on every rank). */
  reduceStep(report: StepReport): StepReport;
  /** After the optimizer step: f_q's values from rank 0 to every rank (replicas only). */
  broadcastParameters(): void;
  /** The fullest device memory among the other ranks (for metrics; 0 when unknown). */
  largestWorkerHeapBytes(): number;
  /**
   * Ends the other ranks (replicas) or leaves the process group: after a clean run every rank waits for
   * the others first; after a failure (`failed`) nobody waits. Safe to call twice.
   */
  close(failed?: boolean): Promise<void>;
}
