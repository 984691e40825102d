// The Dynamic Class Container (DCC): a FIFO ring buffer of S unit-norm class centres and their labels.
//
// It lives in plain JS Float32Arrays, outside the WASM heap (617,856 x 512 floats is 1.2 GiB), split
// into chunks of `chunkSlots` slots. Each chunk is kept in two layouts, because the two products of
// the chunked softmax need the slot axis on different sides (see dccSoftmax.ts):
//   slot-major [c, D]: row j is slot j (cos = K q^T),
//   dim-major  [D, c]: column j is slot j (gradient^T = K^T P^T).
// A label -> slots index (one doubly linked list per label) lets masking find every same-label slot
// without materialising a B x S mask.
import { copyChunked } from '../../util/chunks.js';
import { float32, sliceRows } from '../sharded/shardState.js';
import { AttfcError } from '../../errors.js';
import { Rng } from '../../util/rng.js';

export interface DccOptions {
  /** Number of slots S. */
  size: number;
  /** Embedding size D. */
  dim: number;
  /** Slots per storage/compute chunk (the last chunk may be shorter); default 4096. */
  chunkSlots?: number;
  /** Seed of the random initial centres. */
  seed: number;
  /**
   * The slot of a larger ring this container's slot 0 is (a rank's shard of the DCC, --shard-head):
   * its initial centres and placeholder labels are that ring's slots'. Default 0.
   */
  firstSlot?: number;
}

export const DEFAULT_CHUNK_SLOTS = 4096;

/** Placeholder label of initial slot j: negative, so it never equals a real (>= 0) identity. */
export function placeholderLabel(slot: number): number {
  return -1 - slot;
}

/**
 * The DCC's bookkeeping apart from the vectors: each slot's label, a label -> slots index (one doubly
 * linked list per label, so masking never needs a B x S mask), the ring pointer and the fill. Shared by
 * the JS-memory container below and the libtorch-memory one (deviceDcc.ts).
 */
export class DccSlots {
  /** Label of every slot (placeholders are negative). */
  readonly labels: Int32Array;
  /** Next slot to be written. */
  pointer = 0;
  /** Slots written with real GCCs so far (saturates at S). */
  filled = 0;
  // label -> first slot of its list; per-slot links (-1 = none)
  private readonly head = new Map<number, number>();
  private readonly next: Int32Array;
  private readonly prev: Int32Array;

  /** `firstSlot`: see DccOptions.firstSlot. */
  constructor(
    readonly size: number,
    firstSlot = 0,
  ) {
    this.labels = new Int32Array(size);
    this.next = new Int32Array(size).fill(-1);
    this.prev = new Int32Array(size).fill(-1);
    for (let slot = 0; slot < size; slot++) this.labels[slot] = placeholderLabel(firstSlot + slot);
  }

  /** Checks an enqueue of b rows with these labels; throws before anything is written. */
  checkEnqueue(vectorCount: number, labels: Int32Array, dim: number): void {
    const b = labels.length;
    if (vectorCount !== b * dim) throw new Error(`DCC enqueue: ${vectorCount} floats for ${b} labels of dimension ${dim}`);
    if (b > this.size) throw new Error(`DCC enqueue: ${b} centres do not fit ${this.size} slots`);
    for (let r = 0; r < b; r++) if (labels[r] < 0) throw new Error(`DCC enqueue: label ${labels[r]} (row ${r}) is negative`);
  }

  /** The contiguous slot ranges [start, count] an enqueue of b rows writes, in order (two when it wraps). */
  rangesAt(b: number): [number, number][] {
    const first = Math.min(b, this.size - this.pointer);
    return first === b ? [[this.pointer, b]] : [[this.pointer, first], [0, b - first]];
  }

  /** Relabels slot `slot` (the vector is the caller's business). */
  assign(slot: number, label: number): void {
    if (this.labels[slot] >= 0) this.unlink(slot, this.labels[slot]);
    this.labels[slot] = label;
    if (label >= 0) this.link(slot, label);
  }

  /** Advances the pointer past b written rows. */
  advance(b: number): void {
    this.pointer = (this.pointer + b) % this.size;
    this.filled = Math.min(this.size, this.filled + b);
  }

  /** Calls fn for every slot whose label is `label` (no order guaranteed). */
  forEachSlotWithLabel(label: number, fn: (slot: number) => void): void {
    for (let s = this.head.get(label) ?? -1; s !== -1; s = this.next[s]) fn(s);
  }

  /** Checks and restores labels, pointer and fill, and rebuilds the index. */
  restore(s: { labels: Int32Array; pointer: number; filled: number }, what: string): void {
    if (s.labels.length !== this.size) throw new AttfcError(`${what}: ${s.labels.length} labels, expected ${this.size}`);
    if (!(Number.isInteger(s.pointer) && s.pointer >= 0 && s.pointer < this.size))
      throw new AttfcError(`${what}: pointer ${s.pointer} is not a slot in 0..${this.size - 1}`);
    if (!(Number.isInteger(s.filled) && s.filled >= 0 && s.filled <= this.size))
      throw new AttfcError(`${what}: filled ${s.filled} is not in 0..${this.size}`);
    this.head.clear();
    this.next.fill(-1);
    this.prev.fill(-1);
    for (let slot = 0; slot < this.size; slot++) {
      this.labels[slot] = s.labels[slot];
      if (s.labels[slot] >= 0) this.link(slot, s.labels[slot]);
    }
    this.pointer = s.pointer;
    this.filled = s.filled;
  }

  /** Bytes of the labels and the index links. */
  bytes(): number {
    return 3 * this.size * 4;
  }

  private link(slot: number, label: number): void {
    const first = this.head.get(label);
    this.prev[slot] = -1;
    this.next[slot] = first ?? -1;
    if (first !== undefined) this.prev[first] = slot;
    this.head.set(label, slot);
  }

  private unlink(slot: number, label: number): void {
    const p = this.prev[slot];
    const n = this.next[slot];
    if (p !== -1) this.next[p] = n;
    else if (n !== -1) this.head.set(label, n);
    else this.head.delete(label);
    if (n !== -1) this.prev[n] = p;
    this.prev[slot] = -1;
    this.next[slot] = -1;
  }
}

/**
 * The initial centres: seeded random unit vectors (normalised Gaussians, Marsaglia's polar method), one
 * call per block of rows, in slot order, the same values whatever the blocks. The uniforms come from a
 * local sfc32 seeded by `rng`: S*D values (316 M at the largest setting) are too many for a method call each.
 */
export function randomUnitRows(rng: Rng, dim: number): (out: Float32Array) => void {
  let a = rng.nextUint32() | 0;
  let b = rng.nextUint32() | 0;
  let c = rng.nextUint32() | 0;
  let e = rng.nextUint32() | 0;
  const uniform = (): number => {
    const t = (((a + b) | 0) + e) | 0;
    e = (e + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) * 2.3283064365386963e-10;
  };
  let spare = NaN;
  const normal = (): number => {
    if (!Number.isNaN(spare)) {
      const v = spare;
      spare = NaN;
      return v;
    }
    let u: number, v: number, r: number;
    do {
      u = 2 * uniform() - 1;
      v = 2 * uniform() - 1;
      r = u * u + v * v;
    } while (r >= 1 || r === 0);
    const f = Math.sqrt((-2 * Math.log(r)) / r);
    spare = v * f;
    return u * f;
  };
  return (out: Float32Array) => {
    for (let o = 0; o < out.length; o += dim) {
      let ss = 0;
      for (let d = 0; d < dim; d++) {
        const x = normal();
        out[o + d] = x;
        ss += x * x;
      }
      const inv = 1 / Math.sqrt(ss);
      for (let d = 0; d < dim; d++) out[o + d] *= inv;
    }
  };
}

/** Checks the size, pointer and fill arguments shared by both containers' constructors. */
export function checkDccOptions(opts: DccOptions, chunkSlots: number): void {
  const { size, dim } = opts;
  if (!(Number.isInteger(size) && size >= 1)) throw new AttfcError(`attfc: DCC size must be a whole number >= 1 (got ${size})`);
  if (!(Number.isInteger(dim) && dim >= 1)) throw new AttfcError(`attfc: embedding size must be a whole number >= 1 (got ${dim})`);
  if (!(Number.isInteger(chunkSlots) && chunkSlots >= 1)) throw new AttfcError(`attfc: chunkSlots must be a whole number >= 1 (got ${chunkSlots})`);
}

/**
 * What both DCC containers share: the sizes, the chunking of the slots for the chunked softmax, the
 * label bookkeeping (DccSlots) and the seeded generator of the initial centres; the subclasses hold the
 * vectors (JS memory here, libtorch memory in deviceDcc.ts).
 */
export abstract class DccContainer {
  readonly size: number;
  readonly dim: number;
  readonly chunkSlots: number;
  readonly numChunks: number;
  protected readonly slots: DccSlots;
  protected readonly rng: Rng;
  private readonly firstSlot: number;

  constructor(opts: DccOptions, defaultChunkSlots: number) {
    const chunkSlots = opts.chunkSlots ?? defaultChunkSlots;
    checkDccOptions(opts, chunkSlots);
    this.size = opts.size;
    this.dim = opts.dim;
    this.chunkSlots = Math.min(chunkSlots, this.size);
    this.numChunks = Math.ceil(this.size / this.chunkSlots);
    this.firstSlot = opts.firstSlot ?? 0;
    this.slots = new DccSlots(this.size, this.firstSlot);
    this.rng = new Rng(opts.seed);
  }

  /** The generator of the initial centres, past the slots before firstSlot (drawn and dropped, block by block). */
  protected initialCentres(): (out: Float32Array) => void {
    const fill = randomUnitRows(this.rng, this.dim);
    const block = new Float32Array(Math.min(this.firstSlot, 4096) * this.dim);
    for (let left = this.firstSlot; left > 0; left -= block.length / this.dim) fill(left * this.dim < block.length ? block.subarray(0, left * this.dim) : block);
    return fill;
  }

  /** Label of every slot (placeholders are negative). */
  get labels(): Int32Array {
    return this.slots.labels;
  }

  /** Next slot to be written. */
  get pointer(): number {
    return this.slots.pointer;
  }

  /** Slots holding real GCCs (0..S). */
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

  /** Calls fn for every slot whose label is `label` (no order guaranteed). */
  forEachSlotWithLabel(label: number, fn: (slot: number) => void): void {
    this.slots.forEachSlotWithLabel(label, fn);
  }

  /** The state of the generator of the initial centres (checkpointed). */
  rngState(): number[] {
    return this.rng.getState();
  }

  /** Every slot whose label is `label`, ascending. */
  slotsWithLabel(label: number): number[] {
    const out: number[] = [];
    this.forEachSlotWithLabel(label, (s) => out.push(s));
    return out.sort((a, b) => a - b);
  }

  /** Checks a state's size, then restores labels, pointer, fill and generator; the vectors are the subclass's. */
  protected restoreSlots(s: { vectors: Float32Array[]; labels: Int32Array; pointer: number; filled: number; rng?: number[] }, what: string): void {
    const total = s.vectors.reduce((a, v) => a + v.length, 0);
    if (total !== this.size * this.dim)
      throw new AttfcError(`${what}: ${total} centre values, expected ${this.size * this.dim} (${this.size} slots x ${this.dim})`);
    this.slots.restore(s, what);
    if (s.rng) this.rng.setState(s.rng);
  }

  abstract vector(slot: number): Float32Array;
  /** The centres of slots [start, start + count), slot-major (a copy, or a view of JS memory). */
  abstract readSlots(start: number, count: number): Float32Array;
  abstract enqueue(vectors: Float32Array, labels: Int32Array): void;
  abstract bytes(): number;
  abstract getState(): { vectors: Float32Array[]; labels: Int32Array; pointer: number; filled: number; rng: number[] };
  abstract setState(s: { vectors: Float32Array[]; labels: Int32Array; pointer: number; filled: number; rng?: number[] }, what?: string): void;
}

/** The DCC in JS memory, in both chunk layouts (see the file comment). */
export class DynamicClassContainer extends DccContainer {
  private readonly slotMajorChunks: Float32Array[] = [];
  private readonly dimMajorChunks: Float32Array[] = [];
  private readonly versions: Uint32Array;

  constructor(opts: DccOptions) {
    super(opts, DEFAULT_CHUNK_SLOTS);
    this.versions = new Uint32Array(this.numChunks);
    const fill = this.initialCentres();
    for (let k = 0; k < this.numChunks; k++) {
      const n = this.chunkLength(k);
      const chunk = new Float32Array(n * this.dim);
      fill(chunk);
      this.slotMajorChunks.push(chunk);
      this.dimMajorChunks.push(new Float32Array(n * this.dim));
      this.rebuildDimMajor(k);
    }
  }

  /** Chunk k as [c, D] row-major (live storage: do not modify). */
  slotMajor(k: number): Float32Array {
    return this.slotMajorChunks[k];
  }

  /** Chunk k as [D, c] row-major (live storage: do not modify). */
  dimMajor(k: number): Float32Array {
    return this.dimMajorChunks[k];
  }

  /** Changes whenever a slot of chunk k is written, so device copies know they are stale. */
  chunkVersion(k: number): number {
    return this.versions[k];
  }

  /** A copy of the centre in `slot`. */
  vector(slot: number): Float32Array {
    const k = this.chunkOf(slot);
    const j = slot - this.chunkStart(k);
    return this.slotMajorChunks[k].slice(j * this.dim, (j + 1) * this.dim);
  }

  readSlots(start: number, count: number): Float32Array {
    return sliceRows(this.slotMajorChunks, this.dim, [start, start + count], float32);
  }

  /**
   * Writes b = labels.length centres ([b, D] row-major, stored as given: pass unit vectors) at the
   * pointer, wrapping around, and advances the pointer by b mod S.
   */
  enqueue(vectors: Float32Array, labels: Int32Array): void {
    const D = this.dim;
    this.slots.checkEnqueue(vectors.length, labels, D);
    const b = labels.length;
    for (let r = 0; r < b; r++) this.write((this.slots.pointer + r) % this.size, vectors.subarray(r * D, (r + 1) * D), labels[r]);
    this.slots.advance(b);
  }

  /** Bytes held: both layouts, labels and the label index links. */
  bytes(): number {
    return 2 * this.size * this.dim * 4 + this.slots.bytes();
  }

  /** The slot-major chunks (live arrays), labels, pointer, fill and RNG state. */
  getState(): { vectors: Float32Array[]; labels: Int32Array; pointer: number; filled: number; rng: number[] } {
    return { vectors: this.slotMajorChunks, labels: this.slots.labels, pointer: this.slots.pointer, filled: this.slots.filled, rng: this.rng.getState() };
  }

  /** Restores from any chunking of the slot-major [S, D] stream; rebuilds the other layout and the index. */
  setState(s: { vectors: Float32Array[]; labels: Int32Array; pointer: number; filled: number; rng?: number[] }, what = 'DCC state'): void {
    this.restoreSlots(s, what);
    copyChunked(s.vectors, this.slotMajorChunks);
    for (let k = 0; k < this.numChunks; k++) {
      this.rebuildDimMajor(k);
      this.versions[k]++;
    }
  }

  // ---- internals ----

  private write(slot: number, v: Float32Array, label: number): void {
    const D = this.dim;
    const k = this.chunkOf(slot);
    const j = slot - this.chunkStart(k);
    const c = this.chunkLength(k);
    this.slotMajorChunks[k].set(v, j * D);
    const t = this.dimMajorChunks[k];
    for (let d = 0; d < D; d++) t[d * c + j] = v[d];
    this.versions[k]++;
    this.slots.assign(slot, label);
  }

  /** dim-major copy of chunk k from its slot-major one, in blocks of slots so reads and writes stay in cache. */
  private rebuildDimMajor(k: number): void {
    const D = this.dim;
    const c = this.chunkLength(k);
    const src = this.slotMajorChunks[k];
    const dst = this.dimMajorChunks[k];
    const BLOCK = 64;
    for (let j0 = 0; j0 < c; j0 += BLOCK) {
      const j1 = Math.min(c, j0 + BLOCK);
      for (let d = 0; d < D; d++) {
        const row = d * c;
        for (let j = j0; j < j1; j++) dst[row + j] = src[j * D + d];
      }
    }
  }
}
