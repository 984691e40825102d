// Data parallelism over a c10d process group (PyTorch's DistributedDataParallel, rebuilt for attfc's
// step): every rank reads its own rows of the global batch (the data pipeline's `rows`), computes f_q,
// f_k and the loss of those rows against its replica of the head, and the gradients are summed over the
// ranks by bucketed allreduce that starts while back-propagation still runs. The result of every step
// is the same on every rank, so the replicas never drift and need no broadcast: the sum over the ranks
// of each rank's share of the loss is one process's loss, and so are the gradients. With `syncBn` every
// batch norm normalises over the global batch, which makes N ranks compute what one process computes.
import * as tf from '@tensorflow/tfjs-core';
import type { Backbone } from '../../backbones/index.js';
import { setBatchNormSync } from '../../engine/batchNorm.js';
import type { ProcessGroup } from '../../engine/torch/processGroup.js';
import type { HeadCollectives, ReduceOp } from '../../heads/collectives.js';
import type { GradientExchange, StepReport } from '../dataParallel/exchange.js';
import { GradientBuckets } from './gradientBuckets.js';
import { AttfcError } from '../../errors.js';

/** Slots of the per-step metrics allreduce: loss, stop, rows, then (sum, weight) pairs of head diagnostics. */
const REPORT_SLOTS = 64;
const MAX_DIAGNOSTICS = (REPORT_SLOTS - 3) >> 1;

export interface ProcessGroupExchangeOptions {
  pg: ProcessGroup;
  /** The global batch size (divisible by the world size). */
  batchSize: number;
  fq: Backbone;
  /** Sum batch-norm statistics over the ranks (SyncBatchNorm). */
  syncBn: boolean;
  bucketBytes?: number;
}

/** ATTFC_BUCKET_MB (DDP's bucket_cap_mb): the gradient bucket size in MiB, default 25. */
function bucketBytesFromEnv(): number | undefined {
  const v = process.env.ATTFC_BUCKET_MB;
  if (v === undefined || v === '') return undefined;
  const mb = Number(v);
  if (!(mb > 0)) throw new AttfcError(`ATTFC_BUCKET_MB=${v}: expected a size in MiB > 0`);
  return mb * 2 ** 20;
}

/** Rows [start, end) of the global batch rank `rank` of `worldSize` computes. */
export function rankRows(batchSize: number, rank: number, worldSize: number): [number, number] {
  const per = batchSize / worldSize;
  return [rank * per, (rank + 1) * per];
}

export class ProcessGroupExchange implements GradientExchange {
  readonly localRows: number;
  readonly rows: [number, number];
  private readonly buckets: GradientBuckets;
  /** A persistent buffer for the head's gradients (their size may change from step to step). */
  private headBucket: { id: number; floats: number } | null = null;
  private closed = false;
  /** Seconds the last step waited for gradients after its backward pass. */
  lastGradientWait = 0;

  constructor(private readonly o: ProcessGroupExchangeOptions) {
    const { pg, batchSize } = o;
    if (batchSize % pg.worldSize !== 0) throw new Error(`process group exchange: batch ${batchSize} is not divisible by ${pg.worldSize} ranks`);
    this.rows = rankRows(batchSize, pg.rank, pg.worldSize);
    this.localRows = this.rows[1] - this.rows[0];
    this.buckets = new GradientBuckets(pg, o.fq.trainableVariables().map((v) => v.size), o.bucketBytes ?? bucketBytesFromEnv());
    o.fq.setGradientTap?.(this.buckets.tap);
    if (o.syncBn) setBatchNormSync({ allGather: (t) => pg.allGather(t), allReduceSum: (t) => pg.allReduce([t], 'sum')[0] });
  }

  get rank(): number {
    return this.o.pg.rank;
  }

  get worldSize(): number {
    return this.o.pg.worldSize;
  }

  /** Gradient buckets of the backbone (DDP's ~25 MiB). */
  get bucketCount(): number {
    return this.buckets.count;
  }

  /** What the heads need from the other ranks. */
  collectives(): HeadCollectives {
    const pg = this.o.pg;
    return {
      rank: pg.rank,
      worldSize: pg.worldSize,
      batchSize: this.o.batchSize,
      rows: this.rows,
      allGather: <T extends Float32Array | Int32Array>(values: T) => pg.allGatherValues(values),
      allReduce: <T extends Float32Array | Float64Array>(values: T, op: ReduceOp) => pg.allReduceValues(values, op),
      broadcast: <T extends Float32Array | Int32Array>(values: T, root: number) => pg.broadcastValues(values, root),
      allGatherTensor: (t: tf.Tensor) => pg.allGather(t),
      allReduceTensor: (t: tf.Tensor, op: ReduceOp) => pg.allReduce([t], op)[0],
    };
  }

  /** Each rank's pipeline decodes its own rows: nothing to hand on. */
  postStep(): void {}

  /** The head sees this rank's rows: its own key embeddings. */
  gatherKeyEmbeddings(local: tf.Tensor2D): tf.Tensor2D {
    return local;
  }

  /** The head sees this rank's rows: its own embeddings. */
  joinEmbeddings(local: tf.Tensor2D): tf.Tensor2D {
    return local;
  }

  reduceGradients(backbone: tf.Tensor[], head: tf.Tensor[]): { backbone: tf.Tensor[]; head: tf.Tensor[] } {
    const t0 = performance.now();
    const summed = this.buckets.finish(backbone);
    const headSummed = head.length > 0 ? this.reduceHead(head) : [];
    this.lastGradientWait = (performance.now() - t0) / 1000;
    return { backbone: summed, head: headSummed };
  }

  /** The head's replicated variables' gradients (FC's W, Partial FC's sampled W), summed in one message. */
  private reduceHead(grads: tf.Tensor[]): tf.Tensor[] {
    const floats = grads.reduce((a, g) => a + g.size, 0);
    if (!this.headBucket || this.headBucket.floats < floats) {
      // grows to the largest step seen (Partial FC samples at least round(r N) classes, more with many positives)
      const size = Math.max(floats, Math.ceil(floats * 1.25));
      this.headBucket = { id: this.o.pg.createBucket(size), floats: size };
    }
    return this.o.pg.wait(this.o.pg.bucketAllReduceAsync(this.headBucket.id, grads));
  }

  /**
   * One small allreduce per step: the loss shares add up to the batch loss, the diagnostics (means over
   * each rank's rows) become means over the batch, weighted by rows (a NaN diagnostic weighs nothing),
   * and a stop asked of any rank stops every rank after this step.
   */
  reduceStep(report: StepReport): StepReport {
    const keys = Object.keys(report.diagnostics).sort().slice(0, MAX_DIAGNOSTICS);
    const v = new Float64Array(REPORT_SLOTS);
    const rows = this.localRows;
    v[0] = report.loss;
    v[1] = report.stop ? 1 : 0;
    v[2] = rows;
    keys.forEach((k, i) => {
      const d = report.diagnostics[k];
      if (Number.isFinite(d)) {
        v[3 + 2 * i] = d * rows;
        v[4 + 2 * i] = rows;
      }
    });
    const r = this.o.pg.allReduceValues(v, 'sum');
    const diagnostics: Record<string, number> = {};
    keys.forEach((k, i) => (diagnostics[k] = r[4 + 2 * i] > 0 ? r[3 + 2 * i] / r[4 + 2 * i] : NaN));
    return { loss: r[0], stop: r[1] > 0, diagnostics };
  }

  /** Every rank made the same update: nothing to send. */
  broadcastParameters(): void {}

  largestWorkerHeapBytes(): number {
    return 0;
  }

  /**
   * After a clean finish: waits for every rank (so no rank leaves while another still needs it), then
   * leaves the group. After a failure the group is abandoned instead (its teardown can hang).
   */
  async close(failed = false): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.o.fq.setGradientTap?.(null);
    setBatchNormSync(null);
    this.buckets.reset();
    if (!failed) {
      this.o.pg.barrier();
      this.o.pg.destroy();
    }
  }
}
