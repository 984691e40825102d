// DCC ring buffer: initial state, wrap-around, label index, both layouts, state round trip (pure JS).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DynamicClassContainer } from '../../src/heads/attfc/index.js';

function batch(start: number, b: number, D: number): Float32Array {
  const v = new Float32Array(b * D);
  for (let r = 0; r < b; r++) v[r * D + ((start + r) % D)] = 1; // a recognisable unit vector per row
  return v;
}

test('initial slots: seeded random unit vectors whose labels match no identity', () => {
  const a = new DynamicClassContainer({ size: 10, dim: 6, chunkSlots: 4, seed: 7 });
  const b = new DynamicClassContainer({ size: 10, dim: 6, chunkSlots: 4, seed: 7 });
  const c = new DynamicClassContainer({ size: 10, dim: 6, chunkSlots: 4, seed: 8 });
  for (let s = 0; s < 10; s++) {
    const v = a.vector(s);
    assert.ok(Math.abs(Math.hypot(...v) - 1) < 1e-6);
    assert.deepEqual(v, b.vector(s));
    assert.ok(a.labels[s] < 0);
  }
  assert.notDeepEqual(a.vector(0), c.vector(0));
  assert.equal(new Set(a.labels).size, 10);
  assert.equal(a.filled, 0);
  assert.equal(a.pointer, 0);
});

test('ring buffer wrap-around: pointer, overwritten slots, fill and the label index', () => {
  const D = 4;
  const q = new DynamicClassContainer({ size: 6, dim: D, chunkSlots: 4, seed: 1 });
  q.enqueue(batch(0, 4, D), new Int32Array([10, 11, 12, 10]));
  assert.equal(q.pointer, 4);
  assert.equal(q.filled, 4);
  assert.deepEqual(q.slotsWithLabel(10), [0, 3]);
  q.enqueue(batch(4, 4, D), new Int32Array([20, 21, 10, 22])); // slots 4, 5, then 0, 1
  assert.equal(q.pointer, 2);
  assert.equal(q.filled, 6);
  assert.deepEqual(Array.from(q.labels), [10, 22, 12, 10, 20, 21]);
  assert.deepEqual(q.slotsWithLabel(10), [0, 3]); // slot 0 overwritten by another 10
  assert.deepEqual(q.slotsWithLabel(11), []); // slot 1 (11) overwritten by 22
  assert.deepEqual(q.slotsWithLabel(22), [1]);
  assert.deepEqual(Array.from(q.vector(0)), Array.from(batch(6, 1, D)));
  assert.deepEqual(Array.from(q.vector(5)), Array.from(batch(5, 1, D)));
  q.enqueue(batch(0, 4, D), new Int32Array([30, 30, 30, 30])); // slots 2..5
  assert.equal(q.pointer, 0);
  assert.deepEqual(q.slotsWithLabel(30), [2, 3, 4, 5]);
  assert.deepEqual(q.slotsWithLabel(10), [0]);
  assert.deepEqual(q.slotsWithLabel(20), []);
});

test('both chunk layouts hold the same centres and every write bumps the chunk version', () => {
  const D = 3;
  const q = new DynamicClassContainer({ size: 5, dim: D, chunkSlots: 2, seed: 3 });
  assert.equal(q.numChunks, 3);
  assert.equal(q.chunkLength(2), 1);
  const v0 = [q.chunkVersion(0), q.chunkVersion(1), q.chunkVersion(2)];
  q.enqueue(new Float32Array([1, 2, 3, 4, 5, 6, 7, 8, 9]), new Int32Array([1, 2, 3]));
  assert.notEqual(q.chunkVersion(0), v0[0]);
  assert.notEqual(q.chunkVersion(1), v0[1]);
  assert.equal(q.chunkVersion(2), v0[2]);
  for (let k = 0; k < q.numChunks; k++) {
    const c = q.chunkLength(k);
    for (let j = 0; j < c; j++) for (let d = 0; d < D; d++) assert.equal(q.dimMajor(k)[d * c + j], q.slotMajor(k)[j * D + d]);
  }
});

test('state round trip through a different chunking restores centres, labels, pointer, fill and index', () => {
  const D = 3;
  const a = new DynamicClassContainer({ size: 7, dim: D, chunkSlots: 3, seed: 5 });
  a.enqueue(batch(0, 5, D), new Int32Array([4, 4, 2, 9, 4]));
  const st = a.getState();
  const flat = new Float32Array(7 * D);
  let o = 0;
  for (const v of st.vectors) {
    flat.set(v, o);
    o += v.length;
  }
  const b = new DynamicClassContainer({ size: 7, dim: D, chunkSlots: 4, seed: 99 });
  b.setState({ vectors: [flat.subarray(0, 5), flat.subarray(5)], labels: st.labels, pointer: st.pointer, filled: st.filled, rng: st.rng });
  for (let s = 0; s < 7; s++) assert.deepEqual(b.vector(s), a.vector(s));
  assert.deepEqual(b.slotsWithLabel(4), [0, 1, 4]);
  assert.equal(b.pointer, 5);
  assert.equal(b.filled, 5);
  const c = b.chunkLength(1);
  assert.equal(b.dimMajor(1)[2 * c + 0], b.vector(4)[2]);
  assert.throws(() => b.setState({ ...st, pointer: 7 }), /pointer 7/);
  assert.throws(() => b.setState({ ...st, vectors: [flat.subarray(1)] }), /20 centre values, expected 21/);
});
