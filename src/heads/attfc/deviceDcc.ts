// The DCC in libtorch memory (backend torch): one [S, D] table written in place at the ring pointer, the
// labels and the label -> slots index in JS (DccSlots). Its initial centres and its checkpoint format
// are those of the JS container (dcc.ts), so a run can move between backends.
import type { TorchBackend } from '../../engine/torch/backend.js';
import { TorchRowTable } from '../../engine/torch/rowTable.js';
import { DccContainer, type DccOptions } from './dcc.js';

/** Slots per chunk of the device softmax: long chunks keep the matrix products efficient. */
export const DEVICE_CHUNK_SLOTS = 65536;

export class DeviceClassContainer extends DccContainer {
  readonly table: TorchRowTable;

  constructor(backend: TorchBackend, opts: DccOptions) {
    super(opts, DEVICE_CHUNK_SLOTS);
    const fill = this.initialCentres();
    this.table = new TorchRowTable(backend, this.size, this.dim, (_start, count) => {
      const rows = new Float32Array(count * this.dim);
      fill(rows);
      return rows;
    });
  }

  /** A copy of the centre in `slot`. */
  vector(slot: number): Float32Array {
    return this.table.readRange(slot, 1);
  }

  readSlots(start: number, count: number): Float32Array {
    return this.table.readRange(start, count);
  }

  /** Writes b centres ([b, D] row-major, unit vectors) at the pointer, wrapping around. */
  enqueue(vectors: Float32Array, labels: Int32Array): void {
    const D = this.dim;
    this.slots.checkEnqueue(vectors.length, labels, D);
    let row = 0;
    for (const [start, count] of this.slots.rangesAt(labels.length)) {
      this.table.writeRange(start, vectors.subarray(row * D, (row + count) * D));
      for (let r = 0; r < count; r++) this.slots.assign(start + r, labels[row + r]);
      row += count;
    }
    this.slots.advance(labels.length);
  }

  /** Bytes held: the libtorch table, labels and the label index links. */
  bytes(): number {
    return this.table.bytes() + this.slots.bytes();
  }

  /** The centres downloaded as slot-major blocks (copies), labels (live), pointer, fill and RNG state. */
  getState(): { vectors: Float32Array[]; labels: Int32Array; pointer: number; filled: number; rng: number[] } {
    return { vectors: this.table.readAll(), labels: this.slots.labels, pointer: this.slots.pointer, filled: this.slots.filled, rng: this.rng.getState() };
  }

  setState(s: { vectors: Float32Array[]; labels: Int32Array; pointer: number; filled: number; rng?: number[] }, what = 'DCC state'): void {
    this.restoreSlots(s, what);
    this.table.writeAll(s.vectors);
  }

  dispose(): void {
    this.table.dispose();
  }
}
