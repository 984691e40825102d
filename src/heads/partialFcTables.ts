// Where Partial FC keeps its class centres W and their momentum, [N, D] each: in JS Float32Arrays (any
// backend; WASM's 4 GiB heap could not hold them), or in libtorch memory on backend torch, where the
// step's gather and its SGD on the sampled rows run as ATen ops without a round trip through JS.
import * as tf from '@tensorflow/tfjs-core';
import { copyChunked } from '../util/chunks.js';
import { Rng } from '../util/rng.js';
import type { TorchBackend } from '../engine/torch/backend.js';
import { TorchRowTable } from '../engine/torch/rowTable.js';
import type { SgdSettings } from './types.js';
import { float32, sliceRows } from './sharded/shardState.js';

export interface CentreTables {
  readonly where: 'js' | 'torch';
  /** The centres of `classes` as a new tensor [k, D] (row j = class classes[j]). */
  gather(classes: Int32Array): tf.Tensor2D;
  /** PyTorch SGD (v = mu v + g + wd w; w -= lr v) on the rows of `classes`; grad is [k, D]. */
  sgd(classes: Int32Array, grad: tf.Tensor2D, settings: SgdSettings): void;
  /** W and momentum as row-major [N, D] streams in blocks (live arrays in JS memory, copies from libtorch). */
  state(): { weights: Float32Array[]; momentum: Float32Array[] };
  /** Rows [start, start + count) of W or of the momentum (a copy, or a view of JS memory). */
  readRows(table: 'weights' | 'momentum', start: number, count: number): Float32Array;
  /** Copies both streams in, however chunked; false on a size mismatch (nothing changed then). */
  restore(weights: Float32Array[], momentum: Float32Array[]): boolean;
  dispose(): void;
}

const CHUNK_FLOATS = 2 ** 28;

/** normal(0, 0.01) like arcface_torch, in class order from `rng`, the same values in both places. */
function initialCentres(rng: Rng): (out: Float32Array) => void {
  return (out) => {
    for (let i = 0; i < out.length; i++) out[i] = 0.01 * rng.normal();
  };
}

/** N rows of D floats, split into chunks of rowsPerChunk rows (a single typed array tops out at 2^32-1). */
class JsRows {
  readonly chunks: Float32Array[] = [];

  constructor(
    readonly rows: number,
    readonly dim: number,
    readonly rowsPerChunk: number,
  ) {
    for (let r = 0; r < rows; r += rowsPerChunk) this.chunks.push(new Float32Array(Math.min(rowsPerChunk, rows - r) * dim));
  }

  /** Row `c` (a view). */
  row(c: number): Float32Array {
    const ch = Math.floor(c / this.rowsPerChunk);
    const off = (c - ch * this.rowsPerChunk) * this.dim;
    return this.chunks[ch].subarray(off, off + this.dim);
  }
}

export class JsCentreTables implements CentreTables {
  readonly where = 'js' as const;
  private readonly weights: JsRows;
  private readonly momentum: JsRows;

  constructor(n: number, d: number, rng: Rng, rowsPerChunk = Math.max(1, Math.floor(CHUNK_FLOATS / d))) {
    if (!(Number.isInteger(rowsPerChunk) && rowsPerChunk >= 1)) throw new Error(`head pfc: rowsPerChunk must be a whole number >= 1 (got ${rowsPerChunk})`);
    this.weights = new JsRows(n, d, rowsPerChunk);
    this.momentum = new JsRows(n, d, rowsPerChunk);
    const fill = initialCentres(rng);
    for (const chunk of this.weights.chunks) fill(chunk);
  }

  gather(classes: Int32Array): tf.Tensor2D {
    const D = this.weights.dim;
    const out = new Float32Array(classes.length * D);
    for (let j = 0; j < classes.length; j++) out.set(this.weights.row(classes[j]), j * D);
    return tf.tensor2d(out, [classes.length, D]);
  }

  sgd(classes: Int32Array, grad: tf.Tensor2D, settings: SgdSettings): void {
    const D = this.weights.dim;
    const g = grad.dataSync() as Float32Array;
    const { lr, momentum: mu, weightDecay: wd } = settings;
    for (let j = 0; j < classes.length; j++) {
      const w = this.weights.row(classes[j]);
      const v = this.momentum.row(classes[j]);
      for (let d = 0; d < D; d++) {
        const wOld = w[d];
        const vNew = mu * v[d] + (g[j * D + d] + wd * wOld);
        v[d] = vNew;
        w[d] = wOld - lr * vNew;
      }
    }
  }

  state(): { weights: Float32Array[]; momentum: Float32Array[] } {
    return { weights: this.weights.chunks, momentum: this.momentum.chunks };
  }

  readRows(table: 'weights' | 'momentum', start: number, count: number): Float32Array {
    return sliceRows(this[table].chunks, this.weights.dim, [start, start + count], float32);
  }

  restore(weights: Float32Array[], momentum: Float32Array[]): boolean {
    const size = this.weights.rows * this.weights.dim;
    const total = (parts: Float32Array[]) => parts.reduce((a, p) => a + p.length, 0);
    if (total(weights) !== size || total(momentum) !== size) return false;
    copyChunked(weights, this.weights.chunks);
    copyChunked(momentum, this.momentum.chunks);
    return true;
  }

  dispose(): void {}
}

export class TorchCentreTables implements CentreTables {
  readonly where = 'torch' as const;
  private readonly weights: TorchRowTable;
  private readonly momentum: TorchRowTable;

  constructor(backend: TorchBackend, n: number, d: number, rng: Rng) {
    const fill = initialCentres(rng);
    this.weights = new TorchRowTable(backend, n, d, (_start, count) => {
      const rows = new Float32Array(count * d);
      fill(rows);
      return rows;
    });
    this.momentum = new TorchRowTable(backend, n, d);
  }

  gather(classes: Int32Array): tf.Tensor2D {
    return this.weights.gather(classes);
  }

  sgd(classes: Int32Array, grad: tf.Tensor2D, settings: SgdSettings): void {
    this.weights.sgdRows(classes, grad, this.momentum, settings);
  }

  state(): { weights: Float32Array[]; momentum: Float32Array[] } {
    return { weights: this.weights.readAll(), momentum: this.momentum.readAll() };
  }

  readRows(table: 'weights' | 'momentum', start: number, count: number): Float32Array {
    return this[table].readRange(start, count);
  }

  restore(weights: Float32Array[], momentum: Float32Array[]): boolean {
    const size = this.weights.rows * this.weights.dim;
    const total = (parts: Float32Array[]) => parts.reduce((a, p) => a + p.length, 0);
    if (total(weights) !== size || total(momentum) !== size) return false;
    return this.weights.writeAll(weights) && this.momentum.writeAll(momentum);
  }

  dispose(): void {
    this.weights.dispose();
    this.momentum.dispose();
  }
}
