// The DCC in libtorch memory (backend torch): one [S, D] table written in place at the ring pointer, the
// labels and the label -> slots index in JS (DccSlots). Its initial centres and its checkpoint format
// are those of the JS container (dcc.ts), so a run can move between backends.
import { AttfcError } from '../../errors.js';
import { Rng } from '../../util/rng.js';
import type { TorchBackend } from '../../engine/torch/backend.js';
import { TorchRowTable } from '../../engine/torch/rowTable.js';
import { DccSlots, checkDccOptions, randomUnitRows, type DccOptions } from './dcc.js';

/** Slots per chunk of the device softmax: long chunks keep the matrix products efficient. */
export const DEVICE_CHUNK_SLOTS = 65536;

export class DeviceClassContainer {
  readonly size: number;
  readonly dim: number;
  /** Slots per chunk of the softmax (the table itself is one tensor). */
  readonly chunkSlots: number;
  readonly numChunks: number;
  readonly table: TorchRowTable;
  private readonly slots: DccSlots;
  private readonly rng: Rng;

  constructor(backend: TorchBackend, opts: DccOptions) {
    const chunkSlots = opts.chunkSlots ?? DEVICE_CHUNK_SLOTS;
    checkDccOptions(opts, chunkSlots);
    this.size = opts.size;
    this.dim = opts.dim;
    this.chunkSlots = Math.min(chunkSlots, this.size);
    this.numChunks = Math.ceil(this.size / this.chunkSlots);
    this.slots = new DccSlots(this.size);
    this.rng = new Rng(opts.seed);
    const fill = randomUnitRows(this.rng, this.dim);
    this.table = new TorchRowTable(backend, this.size, this.dim, (_start, count) => {
      const rows = new Float32Array(count * this.dim);
      fill(rows);
      return rows;
    });
  }

  get labels(): Int32Array {
    return this.slots.labels;
  }

  get pointer(): number {
    return this.slots.pointer;
  }

  get filled(): number {
    return this.slots.filled;
  }

  chunkStart(k: number): number {
    return k * this.chunkSlots;
  }

  chunkLength(k: number): number {
    return Math.min(this.chunkSlots, this.size - k * this.chunkSlots);
  }

  chunkOf(slot: number): number {
    return Math.floor(slot / this.chunkSlots);
  }

  /** A copy of the centre in `slot`. */
  vector(slot: number): Float32Array {
    return this.table.readRange(slot, 1);
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

  forEachSlotWithLabel(label: number, fn: (slot: number) => void): void {
    this.slots.forEachSlotWithLabel(label, fn);
  }

  slotsWithLabel(label: number): number[] {
    const out: number[] = [];
    this.forEachSlotWithLabel(label, (s) => out.push(s));
    return out.sort((a, b) => a - b);
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
    const total = s.vectors.reduce((a, v) => a + v.length, 0);
    if (total !== this.size * this.dim)
      throw new AttfcError(`${what}: ${total} centre values, expected ${this.size * this.dim} (${this.size} slots x ${this.dim})`);
    this.slots.restore(s, what);
    this.table.writeAll(s.vectors);
    if (s.rng) this.rng.setState(s.rng);
  }

  dispose(): void {
    this.table.dispose();
  }
}
