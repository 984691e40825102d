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
}

export const DEFAULT_CHUNK_SLOTS = 4096;

/** Placeholder label of initial slot j: negative, so it never equals a real (>= 0) identity. */
export function placeholderLabel(slot: number): number {
  return -1 - slot;
}

export class DynamicClassContainer {
  readonly size: number;
  readonly dim: number;
  readonly chunkSlots: number;
  readonly numChunks: number;
  /** Label of every slot (placeholders are negative). */
  readonly labels: Int32Array;
  private readonly slotMajorChunks: Float32Array[] = [];
  private readonly dimMajorChunks: Float32Array[] = [];
  private readonly versions: Uint32Array;
  private readonly rng: Rng;
  /** Next slot to be written. */
  private ptr = 0;
  /** Slots written with real GCCs so far (saturates at S). */
  private written = 0;
  // label -> first slot of its list; per-slot links (-1 = none)
  private readonly head = new Map<number, number>();
  private readonly next: Int32Array;
  private readonly prev: Int32Array;

  constructor(opts: DccOptions) {
    const { size, dim } = opts;
    const chunkSlots = opts.chunkSlots ?? DEFAULT_CHUNK_SLOTS;
    if (!(Number.isInteger(size) && size >= 1)) throw new AttfcError(`attfc: DCC size must be a whole number >= 1 (got ${size})`);
    if (!(Number.isInteger(dim) && dim >= 1)) throw new AttfcError(`attfc: embedding size must be a whole number >= 1 (got ${dim})`);
    if (!(Number.isInteger(chunkSlots) && chunkSlots >= 1))
      throw new AttfcError(`attfc: chunkSlots must be a whole number >= 1 (got ${chunkSlots})`);
    this.size = size;
    this.dim = dim;
    this.chunkSlots = Math.min(chunkSlots, size);
    this.numChunks = Math.ceil(size / this.chunkSlots);
    this.labels = new Int32Array(size);
    this.next = new Int32Array(size).fill(-1);
    this.prev = new Int32Array(size).fill(-1);
    this.versions = new Uint32Array(this.numChunks);
    for (let slot = 0; slot < size; slot++) this.labels[slot] = placeholderLabel(slot);
    this.rng = new Rng(opts.seed);
    for (let k = 0; k < this.numChunks; k++) {
      const n = this.chunkLength(k);
      this.slotMajorChunks.push(new Float32Array(n * dim));
      this.dimMajorChunks.push(new Float32Array(n * dim));
    }
    this.randomise();
  }

  /** Next slot to be written. */
  get pointer(): number {
    return this.ptr;
  }

  /** Slots holding real GCCs (0..S). */
  get filled(): number {
    return this.written;
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

  /**
   * Writes b = labels.length centres ([b, D] row-major, stored as given: pass unit vectors) at the
   * pointer, wrapping around, and advances the pointer by b mod S.
   */
  enqueue(vectors: Float32Array, labels: Int32Array): void {
    const b = labels.length;
    const D = this.dim;
    if (vectors.length !== b * D) throw new Error(`DCC enqueue: ${vectors.length} floats for ${b} labels of dimension ${D}`);
    if (b > this.size) throw new Error(`DCC enqueue: ${b} centres do not fit ${this.size} slots`);
    for (let r = 0; r < b; r++) {
      if (labels[r] < 0) throw new Error(`DCC enqueue: label ${labels[r]} (row ${r}) is negative`);
      this.write((this.ptr + r) % this.size, vectors.subarray(r * D, (r + 1) * D), labels[r]);
    }
    this.ptr = (this.ptr + b) % this.size;
    this.written = Math.min(this.size, this.written + b);
  }

  /** Calls fn for every slot whose label is `label` (no order guaranteed). */
  forEachSlotWithLabel(label: number, fn: (slot: number) => void): void {
    for (let s = this.head.get(label) ?? -1; s !== -1; s = this.next[s]) fn(s);
  }

  /** Every slot whose label is `label`, ascending. */
  slotsWithLabel(label: number): number[] {
    const out: number[] = [];
    this.forEachSlotWithLabel(label, (s) => out.push(s));
    return out.sort((a, b) => a - b);
  }

  /** Bytes held: both layouts, labels and the label index links. */
  bytes(): number {
    return 2 * this.size * this.dim * 4 + 3 * this.size * 4;
  }

  /** The slot-major chunks (live arrays), labels, pointer, fill and RNG state. */
  getState(): { vectors: Float32Array[]; labels: Int32Array; pointer: number; filled: number; rng: number[] } {
    return { vectors: this.slotMajorChunks, labels: this.labels, pointer: this.ptr, filled: this.written, rng: this.rng.getState() };
  }

  /** Restores from any chunking of the slot-major [S, D] stream; rebuilds the other layout and the index. */
  setState(s: { vectors: Float32Array[]; labels: Int32Array; pointer: number; filled: number; rng?: number[] }, what = 'DCC state'): void {
    const total = s.vectors.reduce((a, v) => a + v.length, 0);
    if (total !== this.size * this.dim)
      throw new AttfcError(`${what}: ${total} centre values, expected ${this.size * this.dim} (${this.size} slots x ${this.dim})`);
    if (s.labels.length !== this.size) throw new AttfcError(`${what}: ${s.labels.length} labels, expected ${this.size}`);
    if (!(Number.isInteger(s.pointer) && s.pointer >= 0 && s.pointer < this.size))
      throw new AttfcError(`${what}: pointer ${s.pointer} is not a slot in 0..${this.size - 1}`);
    if (!(Number.isInteger(s.filled) && s.filled >= 0 && s.filled <= this.size))
      throw new AttfcError(`${what}: filled ${s.filled} is not in 0..${this.size}`);
    copyChunked(s.vectors, this.slotMajorChunks);
    for (let k = 0; k < this.numChunks; k++) {
      this.rebuildDimMajor(k);
      this.versions[k]++;
    }
    this.head.clear();
    this.next.fill(-1);
    this.prev.fill(-1);
    for (let slot = 0; slot < this.size; slot++) {
      this.labels[slot] = s.labels[slot];
      if (s.labels[slot] >= 0) this.link(slot, s.labels[slot]);
    }
    this.ptr = s.pointer;
    this.written = s.filled;
    if (s.rng) this.rng.setState(s.rng);
  }

  // ---- internals ----

  /**
   * Seeded random unit vectors (normalised Gaussians, Marsaglia's polar method) in every slot. The
   * uniforms come from a local sfc32 seeded by the container's Rng: S*D values (316 M at the largest
   * setting) are too many for a method call each.
   */
  private randomise(): void {
    const D = this.dim;
    let a = this.rng.nextUint32() | 0;
    let b = this.rng.nextUint32() | 0;
    let c = this.rng.nextUint32() | 0;
    let e = this.rng.nextUint32() | 0;
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
    for (let k = 0; k < this.numChunks; k++) {
      const out = this.slotMajorChunks[k];
      for (let o = 0; o < out.length; o += D) {
        let ss = 0;
        for (let d = 0; d < D; d++) {
          const x = normal();
          out[o + d] = x;
          ss += x * x;
        }
        const inv = 1 / Math.sqrt(ss);
        for (let d = 0; d < D; d++) out[o + d] *= inv;
      }
      this.rebuildDimMajor(k);
    }
  }

  private write(slot: number, v: Float32Array, label: number): void {
    const D = this.dim;
    const k = this.chunkOf(slot);
    const j = slot - this.chunkStart(k);
    const c = this.chunkLength(k);
    this.slotMajorChunks[k].set(v, j * D);
    const t = this.dimMajorChunks[k];
    for (let d = 0; d < D; d++) t[d * c + j] = v[d];
    this.versions[k]++;
    if (this.labels[slot] >= 0) this.unlink(slot, this.labels[slot]);
    this.labels[slot] = label;
    if (label >= 0) this.link(slot, label);
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
