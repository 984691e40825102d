// Device (tf backend) copies of the DCC chunks.
//
// Resident chunks stay on the device between steps as slot-major [c, D] tensors, re-uploaded only
// after a write. On wasm they serve both products of dccSoftmax.ts: as the left operand of K q^T (not
// packed) and as the right operand ("weights") of P K, which XNNPACK packs once and caches for the
// tensor's lifetime (engine-notes §6, §8). Re-packing a fresh [c, D] weight costs more than the
// matmul itself, so a resident chunk costs about twice its size on the heap: that is what the budget
// counts. Chunks beyond the budget, and a chunk that the coming enqueue is about to overwrite, are
// streamed: uploaded for this step only, in both layouts, so that only the small P^T is packed.
import * as tf from '@tensorflow/tfjs-core';
import type { DynamicClassContainer } from './dcc.js';

/** Default device budget for resident chunks (raw + packed copy). */
export const DEFAULT_DEVICE_BUDGET_BYTES = 1.5 * 2 ** 30;

/** One chunk made available for one step. */
export interface DeviceChunk {
  /** [c, D] slot-major. */
  readonly slotMajor: tf.Tensor2D;
  /** Whether slotMajor stays on the device (use it as the packed right operand). */
  readonly resident: boolean;
  /** [D, c] dim-major copy, uploaded on first call (streamed chunks only). */
  dimMajor(): tf.Tensor2D;
  /** Frees the step-only tensors (resident ones stay). */
  release(): void;
}

export class DccDeviceChunks {
  /** Chunks 0..eligible-1 may be resident. */
  readonly eligible: number;
  private readonly tensors: (tf.Tensor2D | null)[];
  private readonly versions: number[];

  constructor(
    private readonly dcc: DynamicClassContainer,
    budgetBytes: number,
  ) {
    let used = 0;
    let n = 0;
    while (n < dcc.numChunks) {
      const cost = DccDeviceChunks.residentCost(dcc.chunkLength(n), dcc.dim);
      if (used + cost > budgetBytes) break;
      used += cost;
      n++;
    }
    this.eligible = n;
    this.tensors = new Array<tf.Tensor2D | null>(dcc.numChunks).fill(null);
    this.versions = new Array<number>(dcc.numChunks).fill(-1);
  }

  /** Device bytes one resident chunk of c slots is budgeted at: the tensor plus XNNPACK's packed copy. */
  static residentCost(slots: number, dim: number): number {
    return 2 * slots * dim * 4;
  }

  /** Number of chunk tensors resident right now. */
  residentCount(): number {
    return this.tensors.filter((t) => t !== null).length;
  }

  /** Budgeted bytes of the chunks resident right now. */
  residentBytes(): number {
    let b = 0;
    this.tensors.forEach((t, k) => {
      if (t) b += DccDeviceChunks.residentCost(this.dcc.chunkLength(k), this.dcc.dim);
    });
    return b;
  }

  /**
   * Chunk k for this step. `hot`: the coming enqueue writes into it, so a fresh resident copy would be
   * stale after one use; it is streamed instead (a still-valid resident copy is used as is).
   */
  acquire(k: number, hot: boolean): DeviceChunk {
    const dcc = this.dcc;
    const c = dcc.chunkLength(k);
    const D = dcc.dim;
    const version = dcc.chunkVersion(k);
    let t = this.tensors[k];
    if (t && this.versions[k] !== version) {
      t.dispose();
      t = this.tensors[k] = null;
    }
    if (!t && k < this.eligible && !hot) {
      // a copy: the cpu backend keeps the array it is given, and the DCC storage changes under it
      t = this.tensors[k] = tf.keep(tf.tensor2d(dcc.slotMajor(k).slice(), [c, D]));
      this.versions[k] = version;
    }
    if (t) {
      const resident = t;
      return {
        slotMajor: resident,
        resident: true,
        dimMajor: () => {
          throw new Error('DCC device chunk: a resident chunk has no dim-major copy');
        },
        release: () => {},
      };
    }
    const slotMajor = tf.tensor2d(dcc.slotMajor(k), [c, D]);
    let dimMajor: tf.Tensor2D | null = null;
    return {
      slotMajor,
      resident: false,
      dimMajor: () => (dimMajor ??= tf.tensor2d(dcc.dimMajor(k), [D, c])),
      release: () => {
        slotMajor.dispose();
        dimMajor?.dispose();
      },
    };
  }

  /** Drops every resident copy (after a state restore, or to free the heap). */
  invalidateAll(): void {
    for (let k = 0; k < this.tensors.length; k++) {
      this.tensors[k]?.dispose();
      this.tensors[k] = null;
      this.versions[k] = -1;
    }
  }

  dispose(): void {
    this.invalidateAll();
  }
}
