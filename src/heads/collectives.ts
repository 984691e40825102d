// What a head needs from the other processes of a data-parallel run, as an interface (the training
// layer implements it over a c10d process group; one process passes none). Each process computes the
// loss of its own rows of the global batch; a head given collectives must therefore:
//   - return from loss() its rows' share of the global mean, sum_i l_i / globalBatch, so that the sum
//     over the ranks of the losses and of their gradients is one process's loss and gradient;
//   - make every choice that depends on the batch from the whole batch (Partial FC samples its classes
//     from the global labels prepare() receives), identically on every rank;
//   - keep its replicated state identical on every rank (AttFC enqueues every rank's GCCs, in
//     global-batch order).
// Gradients of a head's variables are summed over the ranks by the trainer, like the backbone's; a
// sharded head (--shard-head, sharded/) holds its own part of the classes instead, and its variables'
// gradients stay its own.
import type * as tf from '@tensorflow/tfjs-core';

export type ReduceOp = 'sum' | 'max' | 'min';

export interface HeadCollectives {
  readonly rank: number;
  readonly worldSize: number;
  /** Rows of every global batch (the same on every rank). */
  readonly batchSize: number;
  /** This process's rows [start, end) of the global batch. */
  readonly rows: readonly [number, number];
  /** Every rank's values concatenated in rank order (each rank passes the same length). */
  allGather<T extends Float32Array | Int32Array>(values: T): T;
  /** Element-wise reduction over the ranks. */
  allReduce<T extends Float32Array | Float64Array>(values: T, op: ReduceOp): T;
  /** Rank `root`'s values on every rank (every rank passes an array of the same type and length). */
  broadcast<T extends Float32Array | Int32Array>(values: T, root: number): T;
  /** Device tensors (sharded heads): every rank's tensor stacked along axis 0, in rank order. */
  allGatherTensor(t: tf.Tensor): tf.Tensor;
  /** Device tensors: element-wise reduction over the ranks (a new tensor). */
  allReduceTensor(t: tf.Tensor, op: ReduceOp): tf.Tensor;
}

/** Multiplies a per-row mean over `rows` rows into that rows' share of the global batch mean. */
export function rowShare(collectives: HeadCollectives | undefined, rows: number): number {
  return collectives ? rows / collectives.batchSize : 1;
}
