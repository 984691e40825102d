// The arithmetic of a head split across ranks (--shard-head), without processes: class ranges, which
// rows of an enqueue land in a rank's DCC slots as the ring wraps (checked against a whole ring written
// slot by slot), each rank's own ring pointer, the rows a rank cuts from a whole table, and a DCC
// shard's initial centres and placeholder labels (those of the whole DCC's slots).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { indicesInRange, localRing, ownedRingRows, shardRange, shardRanges } from '../../src/heads/sharded/shardMath.js';
import { sliceRows, float32 } from '../../src/heads/sharded/shardState.js';
import { DynamicClassContainer } from '../../src/heads/attfc/index.js';

test('class ranges: contiguous, cover every class once, sizes differ by at most one (the first ranks hold the extra)', () => {
  assert.deepEqual(shardRanges(24, 2), [[0, 12], [12, 24]]);
  assert.deepEqual(shardRanges(7, 3), [[0, 3], [3, 5], [5, 7]]);
  assert.deepEqual(shardRanges(3, 3), [[0, 1], [1, 2], [2, 3]]);
  for (const [total, W] of [[1000, 7], [5, 4], [2_059_906, 16], [16, 16]]) {
    const ranges = shardRanges(total, W);
    assert.equal(ranges[0][0], 0);
    assert.equal(ranges[W - 1][1], total);
    for (let r = 1; r < W; r++) assert.equal(ranges[r][0], ranges[r - 1][1], `${total}/${W}: rank ${r} starts where rank ${r - 1} ends`);
    const sizes = ranges.map(([a, b]) => b - a);
    assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `${total}/${W}: sizes ${sizes}`);
    assert.ok(sizes.every((s, r) => r === 0 || s <= sizes[r - 1]), `${total}/${W}: larger shards first`);
  }
  assert.throws(() => shardRange(10, 2, 2), /rank 2 of 2 is not a rank/);
});

test('DCC slot ownership over the ring: each rank writes exactly its slots of every enqueue, in its own ring order, and its own pointer and fill follow the global ones', () => {
  // a whole ring written row by row is the reference; every (size, batch, world) combination below
  // makes enqueues start inside, at the edge of and outside a rank's range, and wrap the ring
  for (const [S, B, W] of [[16, 8, 2], [16, 8, 3], [10, 4, 3], [12, 12, 5], [7, 3, 2], [9, 9, 9]]) {
    const ranges = shardRanges(S, W);
    const owner = (slot: number) => ranges.findIndex(([a, b]) => slot >= a && slot < b);
    // each rank's own ring, written only through ownedRingRows
    const local = ranges.map(([a, b]) => ({ slots: new Int32Array(b - a).fill(-1), pointer: 0, filled: 0 }));
    const whole = new Int32Array(S).fill(-1);
    let pointer = 0;
    let filled = 0;
    for (let step = 0, value = 0; step < 3 * S; step++) {
      const rows = Array.from({ length: B }, () => value++);
      for (let j = 0; j < B; j++) whole[(pointer + j) % S] = rows[j];
      ranges.forEach((range, r) => {
        const own = local[r];
        assert.deepEqual(localRing(pointer, filled, range), { pointer: own.pointer, filled: own.filled }, `S ${S} B ${B} W ${W} step ${step}: rank ${r}'s ring`);
        const written = ownedRingRows(pointer, B, S, range).flatMap(([first, n]) => rows.slice(first, first + n));
        // a FIFO of its own: write at its pointer, wrapping
        for (const v of written) {
          own.slots[own.pointer] = v;
          own.pointer = (own.pointer + 1) % own.slots.length;
        }
        own.filled = Math.min(own.slots.length, own.filled + written.length);
      });
      pointer = (pointer + B) % S;
      filled = Math.min(S, filled + B);
      for (let slot = 0; slot < S; slot++) {
        const r = owner(slot);
        assert.equal(local[r].slots[slot - ranges[r][0]], whole[slot], `S ${S} B ${B} W ${W} step ${step}: slot ${slot} (rank ${r})`);
      }
    }
  }
});

test('ownedRingRows: runs of batch rows, split where the enqueue wraps', () => {
  // ring of 16, rank owning slots [8, 16): an enqueue of 8 at pointer 12 writes rows 0..3 to slots 12..15
  assert.deepEqual(ownedRingRows(12, 8, 16, [8, 16]), [[0, 4]]);
  // ... and one at pointer 12 of 16 rows covers the range twice over the wrap: rows 0..3 and 12..15
  assert.deepEqual(ownedRingRows(12, 16, 16, [8, 16]), [[0, 4], [12, 4]]);
  assert.deepEqual(ownedRingRows(12, 8, 16, [0, 8]), [[4, 4]]);
  assert.deepEqual(ownedRingRows(0, 8, 16, [8, 16]), []);
  assert.throws(() => ownedRingRows(0, 17, 16, [0, 8]), /do not fit/);
});

test('the sampled classes a rank holds are a contiguous run of the ascending sample', () => {
  const classes = Int32Array.of(1, 4, 5, 11, 12, 20, 23);
  assert.deepEqual(indicesInRange(classes, [0, 12]), [0, 4]);
  assert.deepEqual(indicesInRange(classes, [12, 24]), [4, 7]);
  assert.deepEqual(indicesInRange(classes, [6, 11]), [3, 3], 'none');
});

test("a rank's rows of a whole table held in chunks of any size", () => {
  const dim = 3;
  const whole = Float32Array.from({ length: 10 * dim }, (_, i) => i);
  const chunked = [whole.slice(0, 7), whole.slice(7, 8), whole.slice(8, 30)];
  for (const [a, b] of shardRanges(10, 3)) assert.deepEqual(sliceRows(chunked, dim, [a, b], float32), whole.slice(a * dim, b * dim));
});

test("a DCC shard starts with the whole DCC's initial centres and placeholder labels for its slots", () => {
  const whole = new DynamicClassContainer({ size: 13, dim: 5, chunkSlots: 4, seed: 3 });
  for (const [a, b] of shardRanges(13, 3)) {
    const part = new DynamicClassContainer({ size: b - a, firstSlot: a, dim: 5, chunkSlots: 4, seed: 3 });
    for (let s = a; s < b; s++) {
      assert.deepEqual(part.vector(s - a), whole.vector(s), `slot ${s}`);
      assert.equal(part.labels[s - a], whole.labels[s]);
    }
    assert.deepEqual(part.getState().rng, whole.getState().rng, 'the same generator state (it is checkpointed)');
  }
});
