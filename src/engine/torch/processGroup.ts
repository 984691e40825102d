// A c10d process group on backend torch: PyTorch's collectives (Gloo on CPU tensors, NCCL on GPUs) over
// tfjs tensors that live in libtorch memory, so nothing crosses into JS on the way. One group per
// process (c10d's rule); it knows nothing about training: src/train/distributed builds on it.
//
// A collective that fails (a peer died, a timeout, the store went away) throws ProcessGroupError and
// leaves the group unusable; c10d offers no repair short of a new group, which attfc does not attempt
// (torchrun restarts every worker instead). Never wait on a failed group in an exit path.
import * as tf from '@tensorflow/tfjs-core';
import { AttfcError } from '../../errors.js';
import type { NativeDtype, ProcessGroupInit, ReduceOpName, TorchAddon } from './addon.js';
import type { TorchBackend } from './backend.js';

export type { ProcessGroupInit, ReduceOpName } from './addon.js';

/** What went wrong, as far as the native message tells. */
export type ProcessGroupFailure = 'peer' | 'timeout' | 'store' | 'other';

export class ProcessGroupError extends AttfcError {
  constructor(
    message: string,
    readonly failure: ProcessGroupFailure,
    /** libtorch's / Gloo's own message. */
    readonly nativeMessage: string,
  ) {
    super(message);
    this.name = 'ProcessGroupError';
  }
}

/** Classifies a native c10d/Gloo message. */
export function classifyFailure(message: string): ProcessGroupFailure {
  if (/closed by peer|reset by peer|broken pipe|connection refused|end of file|read error|write error|socket closed/i.test(message)) return 'peer';
  if (/timed out|timeout/i.test(message)) return 'timeout';
  if (/store|connect/i.test(message)) return 'store';
  return 'other';
}

/** The first line of a native message without Gloo's "[file.cc:123] " source prefix. */
export function nativeSummary(message: string): string {
  return message.split('\n')[0].replace(/^\[[^\]]*\.(cc|cpp|h|hpp):\d+\]\s*/, '').trim();
}

/** An async collective under way: pass it to ProcessGroup.wait(). */
export interface PendingCollective {
  readonly id: number;
  readonly what: string;
}

export class ProcessGroup {
  private destroyed = false;

  private constructor(
    private readonly native: TorchAddon,
    private readonly backend: TorchBackend,
    readonly rank: number,
    readonly worldSize: number,
    /** 'gloo' or 'nccl'. */
    readonly kind: string,
    private readonly store: { host: string; port: number },
  ) {}

  /**
   * Joins (creates, with the other ranks) the process's group. Blocks until every rank has arrived or
   * the timeout passes; an unreachable store is a ProcessGroupError naming its address.
   */
  static join(backend: TorchBackend, init: ProcessGroupInit): ProcessGroup {
    const native = backend.native;
    if (typeof native.pgInit !== 'function') throw new AttfcError('the libtorch addon was built without the process group: rebuild it with `npm run build:native`');
    try {
      const r = native.pgInit(init);
      return new ProcessGroup(native, backend, r.rank, r.worldSize, r.backend, { host: init.host, port: init.port });
    } catch (e) {
      const msg = (e as Error).message ?? String(e);
      if (e instanceof TypeError) throw e;
      const seconds = Math.round(init.timeoutMs / 1000);
      throw new ProcessGroupError(
        `rank ${init.rank} of ${init.worldSize} could not join the process group through the rendezvous store at ${init.host}:${init.port} within ${seconds} s (${nativeSummary(msg)}); ` +
          `check MASTER_ADDR/MASTER_PORT, that rank 0 (or the launcher's store) is running and the port is open`,
        'store',
        msg,
      );
    }
  }

  /** Runs a native collective, turning its failure into a ProcessGroupError. */
  private run<T>(what: string, f: () => T): T {
    if (this.destroyed) throw new Error(`process group: ${what} after destroy()`);
    try {
      return f();
    } catch (e) {
      if (e instanceof TypeError) throw e; // a binding mistake, not a collective failure
      const msg = (e as Error).message ?? String(e);
      const failure = classifyFailure(msg);
      throw new ProcessGroupError(`rank ${this.rank}: ${what} failed: ${nativeSummary(msg)}`, failure, msg);
    }
  }

  private tensor(handle: number, dtype: tf.DataType): tf.Tensor {
    return tf.engine().makeTensorFromTensorInfo(this.backend.output(handle, dtype));
  }

  private handleOf(t: tf.Tensor): number {
    if (tf.engine().backendName !== 'torch') throw new Error('process group: tensors must live on backend torch');
    return this.backend.handle(t);
  }

  /** Element-wise reduction over the ranks of each tensor (one message for all of them): new tensors. */
  allReduce(tensors: tf.Tensor[], op: ReduceOpName = 'sum'): tf.Tensor[] {
    if (tensors.length === 0) return [];
    const handles = this.run(`allreduce (${op})`, () => this.native.pgAllreduce(tensors.map((t) => this.handleOf(t)), op, false) as number[]);
    return handles.map((h, i) => this.tensor(h, tensors[i].dtype));
  }

  /** allReduce of JS values (float64 sums stay float64 on the wire). */
  allReduceValues<T extends Float32Array | Float64Array | Int32Array>(values: T, op: ReduceOpName = 'sum'): T {
    const dtype = values instanceof Float64Array ? 'float64' : values instanceof Int32Array ? 'int32' : 'float32';
    const n = this.native;
    const h = n.fromArray(values, [values.length], dtype, this.backend.device);
    try {
      const [r] = this.run(`allreduce (${op})`, () => n.pgAllreduce([h], op, false) as number[]);
      try {
        return n.toArray(r) as T;
      } finally {
        n.free(r);
      }
    } finally {
      n.free(h);
    }
  }

  /** Every rank's tensor stacked along the first axis, in rank order; every rank passes the same shape. */
  allGather(t: tf.Tensor): tf.Tensor {
    const h = this.run('allgather', () => this.native.pgAllgather(this.handleOf(t), false));
    return this.tensor(h, t.dtype);
  }

  /** allGather of JS values (same length on every rank). */
  allGatherValues<T extends Float32Array | Int32Array>(values: T): T {
    return this.throughTensor(values, values instanceof Int32Array ? 'int32' : 'float32', (h) => this.run('allgather', () => this.native.pgAllgather(h, false) as number));
  }

  /** Root's values on every rank (same shape everywhere): a new tensor. */
  broadcast(t: tf.Tensor, root = 0): tf.Tensor {
    const h = this.run('broadcast', () => this.native.pgBroadcast(this.handleOf(t), root));
    return this.tensor(h, t.dtype);
  }

  /** Root's values on every rank; every rank passes an array of the same type and length (root's is sent). */
  broadcastValues<T extends Uint8Array | Int32Array | Float32Array | Float64Array>(values: T, root = 0): T {
    const dtype = values instanceof Uint8Array ? 'uint8' : values instanceof Int32Array ? 'int32' : values instanceof Float64Array ? 'float64' : 'float32';
    return this.throughTensor(values, dtype, (h) => this.run('broadcast', () => this.native.pgBroadcast(h, root)));
  }

  /** `values` as a libtorch tensor through `collective` (which returns a new handle), read back; both freed. */
  private throughTensor<T extends Uint8Array | Int32Array | Float32Array | Float64Array>(values: T, dtype: NativeDtype, collective: (handle: number) => number): T {
    const n = this.native;
    const h = n.fromArray(values, [values.length], dtype, this.backend.device);
    try {
      const r = collective(h);
      try {
        return n.toArray(r) as T;
      } finally {
        n.free(r);
      }
    } finally {
      n.free(h);
    }
  }

  barrier(): void {
    this.run('barrier', () => this.native.pgBarrier());
  }

  /** A persistent buffer of `numel` floats for bucketAllReduce (gradient buckets, reused every step). */
  createBucket(numel: number): number {
    return this.run('bucket allocation', () => this.native.pgBucket(numel, this.backend.device));
  }

  /**
   * Starts summing `tensors` over the ranks in bucket `bucket` (copied in now, so the caller may dispose
   * them at once). wait() returns the sums as views of the bucket: dispose them before its next use.
   * No tensors: the bucket's whole buffer as it stands is summed in place (one view returned).
   */
  bucketAllReduceAsync(bucket: number, tensors: tf.Tensor[]): PendingCollective {
    const id = this.run('allreduce', () => this.native.pgBucketAllreduce(bucket, tensors.map((t) => this.handleOf(t)), true) as number);
    return { id, what: `allreduce of bucket ${bucket}` };
  }

  /** The float32 results of an async collective, in the order its tensors were given. */
  wait(work: PendingCollective): tf.Tensor[] {
    const r = this.run(work.what, () => this.native.pgWait(work.id));
    return (Array.isArray(r) ? r : [r]).map((h) => this.tensor(h, 'float32'));
  }

  /** A string in the rendezvous store, under this group's prefix. */
  storeSet(key: string, value: string): void {
    this.run('store set', () => this.native.pgStoreSet(key, value));
  }

  /** A string from the store, or null when it did not appear within timeoutMs (or the store is gone). */
  storeGet(key: string, timeoutMs: number): string | null {
    try {
      return this.native.pgStoreGet(key, timeoutMs);
    } catch {
      return null;
    }
  }

  /** Where the rendezvous store is (for messages). */
  storeAddress(): string {
    return `${this.store.host}:${this.store.port}`;
  }

  /** Leaves the group after a clean finish (a failed group is abandoned natively). Safe to call twice. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.native.pgDestroy();
  }
}
