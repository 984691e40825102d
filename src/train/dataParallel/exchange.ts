// What the training step needs from data parallelism, as an interface: each rank computes f_q (and the
// class encoder) on its rows of the batch; rank 0 owns the head, the optimizer, the data and the
// checkpoints. ReplicaGroup implements it today with WASM worker threads over shared memory. The calls
// are collective operations, so a process group such as libtorch's c10d (ProcessGroupGloo on CPU,
// NCCL with CUDA; the engine behind PyTorch's DistributedDataParallel) can implement the same contract
// for several processes or machines on backend torch: postStep = scatter of the batch rows,
// gatherKeyEmbeddings / joinEmbeddings = all_gather, addRemoteGradients = all_reduce(sum),
// broadcastParameters = broadcast from rank 0. The trainer depends on this interface only.
import type * as tf from '@tensorflow/tfjs-core';

export interface GradientExchange {
  /** Rows rank 0 computes itself: [0, localRows) of every batch. */
  readonly localRows: number;
  /** Hands the other ranks their rows of this step's query (and key) images. */
  postStep(queries: Float32Array, keys: Float32Array | null): void;
  /** Rank 0's key embeddings followed by the other ranks' (disposes `local`). */
  gatherKeyEmbeddings(local: tf.Tensor2D): tf.Tensor2D;
  /** Inside the gradient tape: the whole batch's embeddings, rank 0's rows first; gradients flow back to every rank. */
  joinEmbeddings(local: tf.Tensor2D): tf.Tensor2D;
  /** The sum of every rank's backbone gradients, as new tensors (the caller disposes both sets). */
  addRemoteGradients(local: tf.Tensor[]): tf.Tensor[];
  /** After the optimizer step: f_q's values from rank 0 to every rank. */
  broadcastParameters(): void;
  /** The fullest device memory among the other ranks (for metrics; 0 when unknown). */
  largestWorkerHeapBytes(): number;
  /** Ends the other ranks. Safe to call twice. */
  close(): Promise<void>;
}
