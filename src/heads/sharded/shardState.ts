// A sharded head's state in the one format checkpoints know (the one-process head's whole tables): the
// shards of a row table gathered to rank 0 for writing, and a rank's own rows cut from a whole table
// for restoring. Never holds more than one piece of another rank's rows on a rank other than 0.
import { AttfcError } from '../../errors.js';
import type { HeadCollectives } from '../collectives.js';
import type { HeadSharding } from '../types.js';
import { shardRange } from './shardMath.js';

type Values = Float32Array | Int32Array;
/** Reads rows [start, start + count) of a rank's own part of a table. */
export type RowReader<T extends Values> = (start: number, count: number) => T;

/** Values per broadcast while gathering (bounds the temporary copies on every rank). */
const PIECE_VALUES = 2 ** 22;
/** Values per chunk of a gathered table (a single typed array tops out at 2^32 - 1 elements). */
const CHUNK_VALUES = 2 ** 26;

/**
 * The whole table of `totalRows` rows of `dim` values, of which rank r holds rows
 * shardRange(totalRows, r, worldSize), on rank 0 as row-aligned chunks; null on the other ranks. Every
 * rank calls it. Rank r >= 1 sends its rows piece by piece (a broadcast from r, in which every rank
 * takes part); `readOwn(start, count)` reads this rank's own rows [start, start + count).
 */
export function gatherShards<T extends Values>(
  c: HeadCollectives,
  totalRows: number,
  dim: number,
  make: (length: number) => T,
  readOwn: RowReader<T>,
  chunkValues = CHUNK_VALUES,
): T[] | null {
  const rowsPerChunk = Math.max(1, Math.floor(chunkValues / dim));
  const rowsPerPiece = Math.max(1, Math.floor(PIECE_VALUES / dim));
  const out: T[] | null = c.rank === 0 ? [] : null;
  if (out) for (let r = 0; r < totalRows; r += rowsPerChunk) out.push(make(Math.min(rowsPerChunk, totalRows - r) * dim));
  const put = (row: number, values: T) => {
    // rows [row, row + values.length / dim) of the whole table, across chunk boundaries
    for (let at = 0; at < values.length; ) {
      const chunk = Math.floor(row / rowsPerChunk);
      const offset = (row - chunk * rowsPerChunk) * dim;
      const n = Math.min(values.length - at, out![chunk].length - offset);
      out![chunk].set(values.subarray(at, at + n), offset);
      at += n;
      row += n / dim;
    }
  };
  let scratch: T | null = null;
  for (let owner = 0; owner < c.worldSize; owner++) {
    const [start, end] = shardRange(totalRows, owner, c.worldSize);
    for (let row = start; row < end; row += rowsPerPiece) {
      const count = Math.min(rowsPerPiece, end - row);
      if (owner === 0) {
        // rank 0's own rows need not travel
        if (out) put(row, readOwn(row - start, count));
        continue;
      }
      // the receivers' buffer, reused (its contents are not sent)
      scratch ??= make(rowsPerPiece * dim);
      const piece = c.rank === owner ? readOwn(row - start, count) : (scratch.subarray(0, count * dim) as T);
      const got = c.broadcast(piece, owner);
      if (out) put(row, got);
    }
  }
  return out;
}

/** Rows [start, end) of a table of rows of `dim` values held as a chunked row-major stream, as one new array. */
export function sliceRows<T extends Values>(streams: readonly T[], dim: number, [start, end]: readonly [number, number], make: (length: number) => T): T {
  const out = make((end - start) * dim);
  const from = start * dim;
  const to = end * dim;
  let base = 0;
  for (const s of streams) {
    const a = Math.max(from, base);
    const b = Math.min(to, base + s.length);
    if (a < b) out.set(s.subarray(a - base, b - base), a - from);
    base += s.length;
    if (base >= to) break;
  }
  return out;
}

export const float32 = (n: number) => new Float32Array(n);
export const int32 = (n: number) => new Int32Array(n);

/**
 * The shard of a head built with `shard` and collectives of more than one rank (--shard-head in a
 * distributed run); undefined for a whole head. Arguments after `opts` as TableShard's.
 */
export function headShard(
  opts: { collectives?: HeadCollectives; shard?: boolean },
  rows: number,
  dim: number,
  head: string,
  unit: string,
  trainableRows = false,
): TableShard | undefined {
  const c = opts.collectives;
  return opts.shard && c && c.worldSize > 1 ? new TableShard(c, rows, dim, head, unit, trainableRows) : undefined;
}

/**
 * One rank's contiguous rows of a table of `rows` rows of `dim` values split across the ranks (a class
 * table, the DCC's slots), the moves between its shard and the whole table, and the head's sharding
 * as the trainer sees it.
 */
export class TableShard implements HeadSharding {
  /** This rank's rows [start, end) of the whole table. */
  readonly range: [number, number];

  /**
   * `head` and `unit` name the head and its rows ('head fc', 'classes'). `trainableRows`: the head's
   * trainable variable is this table (FC's W), so its optimizer slot is sharded like it.
   */
  constructor(
    readonly collectives: HeadCollectives,
    readonly rows: number,
    readonly dim: number,
    private readonly head: string,
    private readonly unit: string,
    private readonly trainableRows = false,
  ) {
    const W = collectives.worldSize;
    if (rows < W) throw new AttfcError(`${head}: --shard-head splits its ${rows} ${unit} across ${W} ranks, which needs at least one per rank`);
    this.range = shardRange(rows, collectives.rank, W);
  }

  get rank(): number {
    return this.collectives.rank;
  }

  get worldSize(): number {
    return this.collectives.worldSize;
  }

  describe(): string {
    return `${this.unit} ${this.range[0]}..${this.range[1] - 1} of ${this.rows}`;
  }

  gatherTrainable(index: number, local: Float32Array): Float32Array | null {
    this.checkTrainable(index);
    return this.gather([local], float32, { chunkValues: this.rows * this.dim })?.[0] ?? null;
  }

  sliceTrainable(index: number, whole: Float32Array): Float32Array {
    this.checkTrainable(index);
    return this.slice([whole], float32, `${this.head} state`);
  }

  private checkTrainable(index: number): void {
    if (!this.trainableRows || index !== 0) throw new Error(`${this.head}: no sharded trainable variable ${index}`);
  }

  get ownRows(): number {
    return this.range[1] - this.range[0];
  }

  /**
   * The whole table on rank 0 from every rank's own rows (`own`: a chunked row-major stream, or a
   * reader of its rows); null elsewhere. A collective. `dim`: values per row, for a companion table of
   * the same rows (the DCC's labels).
   */
  gather<T extends Values>(own: readonly T[] | RowReader<T>, make: (length: number) => T, { dim = this.dim, chunkValues = CHUNK_VALUES } = {}): T[] | null {
    if (typeof own === 'function') return gatherShards(this.collectives, this.rows, dim, make, own, chunkValues);
    const values = own.reduce((a, p) => a + p.length, 0);
    if (values !== this.ownRows * dim) throw new Error(`table shard: ${values} values for ${this.ownRows} rows of ${dim}`);
    return gatherShards(this.collectives, this.rows, dim, make, (start, count) => sliceRows(own, dim, [start, start + count], make), chunkValues);
  }

  /** This rank's rows of a whole table (any chunking); an AttfcError naming `what` when its size is wrong. */
  slice<T extends Values>(whole: readonly T[], make: (length: number) => T, what: string, dim = this.dim): T {
    const total = whole.reduce((a, p) => a + p.length, 0);
    if (total !== this.rows * dim) throw new AttfcError(`${what}: ${total} values, expected ${this.rows * dim} (${this.rows} x ${dim})`);
    return sliceRows(whole, dim, this.range, make);
  }
}
