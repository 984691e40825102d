// DDP's gradient bucketing, over a c10d process group: the backbone's trained variables are grouped, in
// reverse order (the order back-propagation completes them), into buckets of about 25 MiB. As soon as
// backward has produced every gradient of a bucket (the backbone's gradient tap reports each one), that
// bucket's allreduce starts and runs on Gloo's threads while back-propagation continues; finish() waits
// for the rest. Buckets are persistent buffers in libtorch memory: Gloo on freshly allocated memory ran
// 6-8x slower (native/process_group.cc).
//
// Every rank must start the same buckets in the same order (collectives pair up by order): the taps
// fire in the order of the backward pass, which is the same on every rank for the same model.
import * as tf from '@tensorflow/tfjs-core';
import type { PendingCollective, ProcessGroup } from '../../engine/torch/processGroup.js';

/** DDP's default bucket size. */
export const DEFAULT_BUCKET_BYTES = 25 * 2 ** 20;

interface Bucket {
  /** Variable indices, in the order their gradients are packed. */
  vars: number[];
  /** The persistent buffer's id in the process group. */
  buffer: number;
  /** Gradients received this step (kept until the bucket starts). */
  got: Map<number, tf.Tensor>;
  pending: PendingCollective | null;
  /** Reduced gradients of this step (views of the buffer), in `vars` order. */
  result: tf.Tensor[] | null;
}

/** Groups variable sizes (in floats) into buckets of at most `bucketBytes`, last variable first. */
export function planBuckets(sizes: readonly number[], bucketBytes = DEFAULT_BUCKET_BYTES): number[][] {
  const limit = Math.max(1, Math.floor(bucketBytes / 4));
  const out: number[][] = [];
  let current: number[] = [];
  let floats = 0;
  for (let i = sizes.length - 1; i >= 0; i--) {
    if (current.length > 0 && floats + sizes[i] > limit) {
      out.push(current);
      current = [];
      floats = 0;
    }
    current.push(i);
    floats += sizes[i];
  }
  if (current.length > 0) out.push(current);
  return out;
}

export class GradientBuckets {
  private readonly buckets: Bucket[];
  /** Bucket of each variable. */
  private readonly bucketOf: number[];
  /** Buckets started this step, in start order (the order every rank waits in). */
  private started: Bucket[] = [];
  /** Seconds spent waiting for allreduces in finish() in the last step (communication not hidden). */
  lastWaitSeconds = 0;

  constructor(
    private readonly pg: ProcessGroup,
    private readonly sizes: readonly number[],
    bucketBytes = DEFAULT_BUCKET_BYTES,
  ) {
    const plan = planBuckets(sizes, bucketBytes);
    this.bucketOf = new Array<number>(sizes.length);
    this.buckets = plan.map((vars, b) => {
      for (const v of vars) this.bucketOf[v] = b;
      const floats = vars.reduce((a, v) => a + sizes[v], 0);
      return { vars, buffer: pg.createBucket(floats), got: new Map(), pending: null, result: null };
    });
  }

  get count(): number {
    return this.buckets.length;
  }

  /** The backbone's gradient tap: holds the gradient and starts its bucket once it is complete. */
  readonly tap = (index: number, gradient: tf.Tensor): void => {
    const b = this.buckets[this.bucketOf[index]];
    if (!b) throw new Error(`gradient buckets: no variable ${index}`);
    if (b.pending || b.result) throw new Error(`gradient buckets: variable ${index}'s gradient arrived twice in one step`);
    if (b.got.has(index)) throw new Error(`gradient buckets: variable ${index}'s gradient arrived twice in one step`);
    b.got.set(index, tf.keep(tf.clone(gradient)));
    if (b.got.size === b.vars.length) this.start(b);
  };

  /**
   * After the backward pass: starts the buckets still waiting (taking the gradients `all` holds for
   * variables that sent none), waits for every bucket, and returns the gradients summed over the ranks,
   * indexed like `all`. They are views of the buckets' buffers: dispose them before the next step.
   */
  finish(all: readonly tf.Tensor[]): tf.Tensor[] {
    if (all.length !== this.sizes.length) throw new Error(`gradient buckets: ${all.length} gradients for ${this.sizes.length} variables`);
    for (const b of this.buckets) {
      if (b.pending || b.result) continue;
      for (const v of b.vars) if (!b.got.has(v)) b.got.set(v, tf.keep(tf.clone(all[v])));
      this.start(b);
    }
    const t0 = performance.now();
    const out = new Array<tf.Tensor>(all.length);
    try {
      for (const b of this.started) {
        b.result = this.pg.wait(b.pending!);
        b.pending = null;
        b.vars.forEach((v, i) => (out[v] = b.result![i]));
      }
    } finally {
      this.lastWaitSeconds = (performance.now() - t0) / 1000;
      for (const b of this.buckets) {
        b.result = null;
        b.pending = null;
      }
      this.started = [];
    }
    return out;
  }

  /** Drops whatever a failed step left (held gradients). */
  reset(): void {
    for (const b of this.buckets) {
      for (const g of b.got.values()) g.dispose();
      b.got.clear();
      b.pending = null;
      b.result = null;
    }
    this.started = [];
  }

  private start(b: Bucket): void {
    const grads = b.vars.map((v) => b.got.get(v)!);
    b.pending = this.pg.bucketAllReduceAsync(b.buffer, grads);
    // copied into the bucket's buffer by now
    for (const g of grads) g.dispose();
    b.got.clear();
    this.started.push(b);
  }
}
