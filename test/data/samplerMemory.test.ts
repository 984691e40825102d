// Sampler memory at WebFace42M's identity count: labels, per-identity image lists and the epoch's order
// live in flat typed arrays (or are arithmetic), so the JS heap does not grow with the identities.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { measureSamplerMemory } from '../../src/data/samplerMemory.js';

const MiB = 2 ** 20;

test('the sampler over 2,059,906 on-demand synthetic identities keeps no per-identity JS objects', () => {
  const m = measureSamplerMemory('synth:2059906x3@32');
  assert.equal(m.identities, 2059906);
  assert.equal(m.images, 6179718);
  assert.equal(m.epoch, 1, 'the batches crossed into the next epoch');
  // one object per identity would take at least 16 bytes each: 31 MiB; the heap grows by far less
  assert.ok(m.heapBytes < 4 * MiB, `JS heap grew by ${(m.heapBytes / MiB).toFixed(1)} MiB`);
  // typed arrays: the epoch's permutation, 4 bytes per image (the previous epoch's is garbage by now)
  assert.ok(m.arrayBufferBytes < 4 * m.images + 2 * MiB, `typed arrays grew by ${(m.arrayBufferBytes / MiB).toFixed(1)} MiB`);
});
