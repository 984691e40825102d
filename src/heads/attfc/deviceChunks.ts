// Device (tf backend) copies of the DCC chunks, kept between steps as far as a byte budget allows.
//
// The two products of dccSoftmax.ts use a chunk K [c, D] differently:
//   cosines   K q^T   K is the left operand: used as stored, never packed;
//   gradient  P K     K is the right operand ("weights"): XNNPACK packs it, and caches the packed
//                     copy for as long as the tensor lives (a new tensor id, e.g. every upload,
//                     means a new packing, and the copy doubles the operand's heap); packing a fresh
//                     [c, D] operand costs more than the product itself;
//   or        K^T P^T with a dim-major K^T [D, c] on the left: only the small P^T [c, B] is packed.
// Hence three ways to hold chunk k:
//   'packed':   slot-major tensor resident, used for both products (budget: 2x its bytes, for the
//               packed copy); no per-step upload or packing;
//   'resident': slot-major tensor resident (1x); K^T uploaded per step from the JS copy;
//   'streamed': both layouts uploaded per step (0x).
// A chunk the coming enqueue is about to overwrite is streamed while its resident copy is stale:
// re-uploading (and re-packing) it would serve a single step.
import * as tf from '@tensorflow/tfjs-core';
import type { DynamicClassContainer } from './dcc.js';

/** Default device budget for DCC chunks kept between steps. */
export const DEFAULT_DEVICE_BUDGET_BYTES = 1.5 * 2 ** 30;

export type ChunkPlacement = 'packed' | 'resident' | 'streamed';

/** One chunk made available for one step. */
export interface DeviceChunk {
  /** [c, D] slot-major. */
  readonly slotMajor: tf.Tensor2D;
  /** True when slotMajor stays resident with its packed copy: compute the gradient as P K. */
  readonly packed: boolean;
  /** [D, c] dim-major copy for K^T P^T, uploaded on first call (not for packed chunks). */
  dimMajor(): tf.Tensor2D;
  /** Frees the step-only tensors (resident ones stay). */
  release(): void;
}

/**
 * Placement of chunks of the given lengths under a byte budget: every chunk resident first (saves an
 * upload per step), then as many as still fit packed (saves the packing too).
 */
export function planPlacement(chunkLengths: readonly number[], dim: number, budgetBytes: number): ChunkPlacement[] {
  const placement = new Array<ChunkPlacement>(chunkLengths.length).fill('streamed');
  const bytes = (k: number) => chunkLengths[k] * dim * 4;
  let left = budgetBytes;
  for (let k = 0; k < chunkLengths.length && bytes(k) <= left; k++) {
    placement[k] = 'resident';
    left -= bytes(k);
  }
  for (let k = 0; k < chunkLengths.length && placement[k] === 'resident' && bytes(k) <= left; k++) {
    placement[k] = 'packed';
    left -= bytes(k);
  }
  return placement;
}

/**
 * Peak device bytes of the AttFC head: resident chunks (packed ones twice) plus one step's
 * temporaries for the largest chunk (both layouts, cosines, weights and P^T's packed copy, q^T).
 */
export function estimateDeviceBytes(queueSize: number, dim: number, batchSize: number, chunkSlots: number, budgetBytes: number): number {
  const c = Math.min(chunkSlots, queueSize);
  const lengths = Array.from({ length: Math.ceil(queueSize / c) }, (_, k) => Math.min(c, queueSize - k * c));
  const resident = planPlacement(lengths, dim, budgetBytes).reduce(
    (a, p, k) => a + (p === 'packed' ? 2 : p === 'resident' ? 1 : 0) * lengths[k] * dim * 4,
    0,
  );
  const temporaries = (2 * c * dim + 3 * c * batchSize + 2 * dim * batchSize) * 4;
  return resident + temporaries;
}

export class DccDeviceChunks {
  private readonly placement: ChunkPlacement[];
  private readonly tensors: (tf.Tensor2D | null)[];
  private readonly versions: number[];

  constructor(
    private readonly dcc: DynamicClassContainer,
    budgetBytes: number,
  ) {
    const n = dcc.numChunks;
    this.placement = planPlacement(Array.from({ length: n }, (_, k) => dcc.chunkLength(k)), dcc.dim, budgetBytes);
    this.tensors = new Array<tf.Tensor2D | null>(n).fill(null);
    this.versions = new Array<number>(n).fill(-1);
  }

  /** How chunk k is held (fixed by the budget). */
  placementOf(k: number): ChunkPlacement {
    return this.placement[k];
  }

  /** Number of chunk tensors resident right now. */
  residentCount(): number {
    return this.tensors.filter((t) => t !== null).length;
  }

  /** Device bytes of the chunks resident right now, packed copies included. */
  residentBytes(): number {
    let b = 0;
    this.tensors.forEach((t, k) => {
      if (t) b += (this.placement[k] === 'packed' ? 2 : 1) * this.dcc.chunkLength(k) * this.dcc.dim * 4;
    });
    return b;
  }

  /** Chunk k for this step. `hot`: the coming enqueue writes into it (see the file comment). */
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
    if (!t && this.placement[k] !== 'streamed' && !hot) {
      // a copy: the cpu backend keeps the array it is given, and the DCC storage changes under it
      t = this.tensors[k] = tf.keep(tf.tensor2d(dcc.slotMajor(k).slice(), [c, D]));
      this.versions[k] = version;
    }
    const slotMajor = t ?? tf.tensor2d(dcc.slotMajor(k), [c, D]);
    const owned = t === null;
    let dimMajor: tf.Tensor2D | null = null;
    return {
      slotMajor,
      packed: !owned && this.placement[k] === 'packed',
      dimMajor: () => (dimMajor ??= tf.tensor2d(dcc.dimMajor(k), [D, c])),
      release: () => {
        if (owned) slotMajor.dispose();
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
