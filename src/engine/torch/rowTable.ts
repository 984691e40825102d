// A [rows, dim] float32 table in libtorch memory that its owner changes in place: the storage behind
// AttFC's DCC and Partial FC's W (and momentum) on backend torch, where no WASM heap limits them and a
// step must not copy the whole table. It is not a tfjs tensor (tfjs assumes tensors never change): it
// hands out fresh tensors (gathers) and raw addon handles for the heads' own ATen code, and never lets
// the autodiff tape see its storage.
import * as tf from '@tensorflow/tfjs-core';
import type { TorchBackend } from './backend.js';

/** Rows per upload/download block (at most 2^26 floats = 256 MiB moves at a time). */
const BLOCK_FLOATS = 2 ** 26;

export class TorchRowTable {
  private h: number | null;

  /** A table of zeros; `fill(start, count)` (if given) supplies rows block by block, in order. */
  constructor(
    readonly backend: TorchBackend,
    readonly rows: number,
    readonly dim: number,
    fill?: (start: number, count: number) => Float32Array,
  ) {
    this.h = backend.aten.t('zeros', [rows, dim], 'float32', null, backend.device);
    if (fill) for (const [start, count] of this.blocks(0, rows)) this.writeRange(start, fill(start, count));
  }

  /** The addon handle of the whole [rows, dim] tensor (for the owner's ATen calls; do not free it). */
  get handle(): number {
    if (this.h === null) throw new Error('TorchRowTable: used after dispose()');
    return this.h;
  }

  /** Bytes of libtorch memory the table holds. */
  bytes(): number {
    return this.rows * this.dim * 4;
  }

  /** Overwrites rows [start, start + n) with n rows of values (row-major). */
  writeRange(start: number, values: Float32Array): void {
    const n = values.length / this.dim;
    this.checkRange(start, n);
    const b = this.backend;
    b.scoped((s) => {
      const src = s.tmp(b.upload(values, [n, this.dim], 'float32'));
      s.tmp(b.aten.t('copy_', s.op('narrow', this.handle, 0, start, n), src));
    });
  }

  /** Copies rows [start, start + n) out. */
  readRange(start: number, n: number): Float32Array {
    this.checkRange(start, n);
    const b = this.backend;
    return b.scoped((s) => b.native.toArray(s.op('narrow', this.handle, 0, start, n)) as Float32Array);
  }

  /** The whole table as row-major blocks of at most 2^26 floats each (for checkpoints). */
  readAll(): Float32Array[] {
    return this.blocks(0, this.rows).map(([start, count]) => this.readRange(start, count));
  }

  /** Fills the table from a row-major stream however it is chunked (for restores); false on a size mismatch. */
  writeAll(parts: readonly Float32Array[]): boolean {
    if (parts.reduce((a, p) => a + p.length, 0) !== this.rows * this.dim) return false;
    let row = 0;
    let carry: Float32Array | null = null;
    for (const p of parts) {
      let data = p;
      if (carry) {
        const joined = new Float32Array(carry.length + p.length);
        joined.set(carry);
        joined.set(p, carry.length);
        data = joined;
        carry = null;
      }
      const whole = Math.floor(data.length / this.dim) * this.dim;
      if (whole > 0) {
        this.writeRange(row, data.subarray(0, whole));
        row += whole / this.dim;
      }
      if (whole < data.length) carry = data.slice(whole);
    }
    return true;
  }

  /** Rows `indices` as a new tfjs tensor [k, dim] (a copy). */
  gather(indices: Int32Array): tf.Tensor2D {
    const b = this.backend;
    return b.scoped((s) => {
      const idx = s.tmp(b.upload(indices, [indices.length], 'int32'));
      const h = b.aten.t('index_select', this.handle, 0, s.op('to.dtype', idx, 'int64'));
      return tf.engine().makeTensorFromTensorInfo(b.output(h, 'float32')) as tf.Tensor2D;
    });
  }

  /**
   * PyTorch's SGD on rows `indices` of this table (the weights) and of `momentum`, in place:
   * v = mu * v + (g + wd * w); w = w - lr * v. `grad` is [k, dim], row j for indices[j].
   */
  sgdRows(indices: Int32Array, grad: tf.Tensor2D, momentum: TorchRowTable, sgd: { lr: number; momentum: number; weightDecay: number }): void {
    const b = this.backend;
    b.scoped((s) => {
      const idx = s.op('to.dtype', s.tmp(b.upload(indices, [indices.length], 'int32')), 'int64');
      const w = s.op('index_select', this.handle, 0, idx);
      const v = s.op('index_select', momentum.handle, 0, idx);
      const g = s.op('add.Tensor', b.handle(grad), w, sgd.weightDecay);
      const vNew = s.op('add.Tensor', g, v, sgd.momentum);
      const wNew = s.op('sub.Tensor', w, vNew, sgd.lr);
      s.tmp(b.aten.t('index_copy_', this.handle, 0, idx, wNew));
      s.tmp(b.aten.t('index_copy_', momentum.handle, 0, idx, vNew));
    });
  }

  dispose(): void {
    if (this.h !== null) this.backend.native.free(this.h);
    this.h = null;
  }

  /** [start, count] blocks of at most BLOCK_FLOATS floats covering rows [from, to). */
  private blocks(from: number, to: number): [number, number][] {
    const per = Math.max(1, Math.floor(BLOCK_FLOATS / this.dim));
    const out: [number, number][] = [];
    for (let r = from; r < to; r += per) out.push([r, Math.min(per, to - r)]);
    return out;
  }

  private checkRange(start: number, n: number): void {
    if (!(Number.isInteger(start) && Number.isInteger(n) && start >= 0 && n >= 0 && start + n <= this.rows))
      throw new Error(`TorchRowTable: rows [${start}, ${start + n}) are outside [0, ${this.rows})`);
  }
}

/** The torch backend when it is the current one (device-resident head tables), else null. */
export function currentTorchBackend(): TorchBackend | null {
  return tf.getBackend() === 'torch' ? (tf.backend() as TorchBackend) : null;
}
