// The arithmetic of a head split across the ranks of a run (--shard-head): which contiguous range of a
// class table or of the DCC's slots each rank owns, which rows of an enqueue land in a rank's slots as
// the ring wraps, and where a rank's own ring pointer stands for a given global one. Pure functions of
// numbers: no tensors, no collectives (the heads and sharded/ files build on them).

/** Rows [start, end) of `total` that rank `rank` of `worldSize` owns: contiguous, sizes differ by at most one (the first total % worldSize ranks hold one more). */
export function shardRange(total: number, rank: number, worldSize: number): [number, number] {
  if (!(Number.isInteger(worldSize) && worldSize >= 1 && Number.isInteger(rank) && rank >= 0 && rank < worldSize))
    throw new Error(`shardRange: rank ${rank} of ${worldSize} is not a rank`);
  const base = Math.floor(total / worldSize);
  const extra = total % worldSize;
  const start = rank * base + Math.min(rank, extra);
  return [start, start + base + (rank < extra ? 1 : 0)];
}

/** Every rank's range, in rank order. */
export function shardRanges(total: number, worldSize: number): [number, number][] {
  return Array.from({ length: worldSize }, (_, r) => shardRange(total, r, worldSize));
}

/**
 * The rows of an enqueue of `count` rows at ring position `pointer` (of a ring of `size` slots) that
 * land in the slots [start, end), as runs [firstRow, rows] in row order. Row j goes to slot
 * (pointer + j) mod size; count <= size, so no slot is written twice. In row order the owned slots are
 * written in the owner's own ring order (ascending, wrapping back to `start` at most once), which is
 * what lets each rank keep its slots as a ring of their own.
 */
export function ownedRingRows(pointer: number, count: number, size: number, [start, end]: readonly [number, number]): [number, number][] {
  if (count > size) throw new Error(`ownedRingRows: ${count} rows do not fit a ring of ${size}`);
  const runs: [number, number][] = [];
  // the written slots as at most two plain intervals [from, to) of the ring, with their first row
  const first = Math.min(count, size - pointer);
  const pieces: [number, number, number][] = [[pointer, pointer + first, 0]];
  if (first < count) pieces.push([0, count - first, first]);
  for (const [from, to, row0] of pieces) {
    const a = Math.max(from, start);
    const b = Math.min(to, end);
    if (a < b) runs.push([row0 + (a - from), b - a]);
  }
  return runs;
}

/**
 * The own ring of the rank owning slots [start, end) of a ring of `size` whose global pointer and fill
 * are `pointer` and `filled`: its next slot to write (0 unless the global pointer is inside its range:
 * it is either not reached yet in this lap or passed) and how many of its slots hold centres (slots
 * fill from 0 upward until the ring is full).
 */
export function localRing(pointer: number, filled: number, [start, end]: readonly [number, number]): { pointer: number; filled: number } {
  return {
    pointer: pointer >= start && pointer < end ? pointer - start : 0,
    filled: Math.min(end - start, Math.max(0, filled - start)),
  };
}

/** Index range [lo, hi) of the ascending `sorted` whose values lie in [start, end). */
export function indicesInRange(sorted: Int32Array, [start, end]: readonly [number, number]): [number, number] {
  return [lowerBound(sorted, start), lowerBound(sorted, end)];
}

/** Index of the first element >= x in an ascending array. */
export function lowerBound(a: Int32Array, x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
