import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IdentitySampler, deriveSeed, type SamplerDataset } from '../../src/data/sampler.js';

/** In-memory dataset: identity i has sizes[i] images, stored contiguously. */
function memoryDataset(sizes: number[]): SamplerDataset {
  const labels: number[] = [];
  const byIdentity: Int32Array[] = [];
  for (const [id, n] of sizes.entries()) {
    byIdentity.push(Int32Array.from({ length: n }, (_, k) => labels.length + k));
    for (let k = 0; k < n; k++) labels.push(id);
  }
  return { numImages: labels.length, label: (i) => labels[i], identityImages: (id) => byIdentity[id] };
}

const sizes = [5, 1, 3, 8, 2, 4, 1, 6]; // 30 images, two single-image identities
const dataset = memoryDataset(sizes);

test('every image is a query exactly once per epoch, in a different order each epoch', () => {
  const sampler = new IdentitySampler(dataset, { sampleNum: 3, seed: 7 });
  const orders: number[][] = [];
  for (let epoch = 0; epoch < 3; epoch++) {
    const order: number[] = [];
    for (let b = 0; b < 6; b++) {
      const batch = sampler.nextBatch(5);
      assert.equal(batch.epoch, epoch);
      order.push(...batch.queries);
    }
    assert.deepEqual([...order].sort((a, b) => a - b), Array.from({ length: 30 }, (_, i) => i));
    orders.push(order);
  }
  assert.notDeepEqual(orders[0], orders[1]);
  assert.notDeepEqual(orders[1], orders[2]);
  assert.notDeepEqual(orders[0], Array.from({ length: 30 }, (_, i) => i));
});

test('keys and labels belong to the query identity; layout i*(K-1)+j', () => {
  const K = 4;
  const sampler = new IdentitySampler(dataset, { sampleNum: K, seed: 3 });
  for (let b = 0; b < 10; b++) {
    const { queries, keys, labels } = sampler.nextBatch(7);
    assert.equal(keys.length, 7 * (K - 1));
    for (let i = 0; i < 7; i++) {
      assert.equal(labels[i], dataset.label(queries[i]));
      for (let j = 0; j < K - 1; j++) assert.equal(dataset.label(keys[i * (K - 1) + j]), labels[i]);
    }
  }
});

test('keys are drawn uniformly with replacement; a one-image identity repeats its image', () => {
  const big = memoryDataset([4, 1]);
  const sampler = new IdentitySampler(big, { sampleNum: 3, seed: 11 });
  const counts = new Map<number, number>();
  let repeats = 0;
  let keyEqualsQuery = 0;
  for (let b = 0; b < 400; b++) {
    const { queries, keys, labels } = sampler.nextBatch(5);
    for (let i = 0; i < 5; i++) {
      const [k0, k1] = [keys[2 * i], keys[2 * i + 1]];
      if (labels[i] === 1) {
        assert.deepEqual([k0, k1], [4, 4]);
        continue;
      }
      if (k0 === k1) repeats++;
      if (k0 === queries[i] || k1 === queries[i]) keyEqualsQuery++;
      for (const k of [k0, k1]) counts.set(k, (counts.get(k) ?? 0) + 1);
    }
  }
  // 1600 identity-0 samples -> 3200 keys over 4 images; with replacement, k0 === k1 about 1/4 of the time
  for (let img = 0; img < 4; img++) assert.ok(Math.abs(counts.get(img)! - 800) < 120, `image ${img}: ${counts.get(img)}`);
  assert.ok(repeats > 300 && repeats < 500, `repeats ${repeats}`);
  assert.ok(keyEqualsQuery > 0);
});

test('K = 1 gives no keys', () => {
  const sampler = new IdentitySampler(dataset, { sampleNum: 1, seed: 1 });
  const batch = sampler.nextBatch(8);
  assert.equal(batch.keys.length, 0);
  assert.equal(batch.queries.length, 8);
});

test('same seed gives the same batches; another seed does not', () => {
  const draw = (seed: number) => {
    const s = new IdentitySampler(dataset, { sampleNum: 3, seed });
    return Array.from({ length: 9 }, () => s.nextBatch(8));
  };
  assert.deepEqual(draw(42), draw(42));
  assert.notDeepEqual(draw(42), draw(43));
});

test('batches crossing an epoch boundary drop nothing and continue into the next epoch', () => {
  const sampler = new IdentitySampler(dataset, { sampleNum: 2, seed: 5 });
  const all: number[] = [];
  const epochs: number[] = [];
  for (let b = 0; b < 9; b++) {
    const batch = sampler.nextBatch(7); // 63 queries: 2 full epochs + 3
    epochs.push(batch.epoch);
    all.push(...batch.queries);
  }
  assert.deepEqual(epochs, [0, 0, 0, 0, 0, 1, 1, 1, 1]);
  for (const [from, to] of [[0, 30], [30, 60]]) {
    assert.deepEqual(all.slice(from, to).sort((a, b) => a - b), Array.from({ length: 30 }, (_, i) => i));
  }
  // a batch larger than the dataset spans several epochs
  const wide = new IdentitySampler(dataset, { sampleNum: 1, seed: 5 }).nextBatch(75);
  assert.equal(wide.epoch, 0);
  assert.deepEqual([...wide.queries.slice(0, 60)].sort((a, b) => a - b), [...all.slice(0, 60)].sort((a, b) => a - b));
});

test('state round trip (through JSON) gives identical future batches, also across epochs', () => {
  const reference = new IdentitySampler(dataset, { sampleNum: 3, seed: 9 });
  for (let b = 0; b < 5; b++) reference.nextBatch(7); // mid-epoch 1
  const saved = JSON.parse(JSON.stringify(reference.getState()));
  const expected = Array.from({ length: 12 }, () => reference.nextBatch(7));

  const resumed = new IdentitySampler(dataset, { sampleNum: 3, seed: 9 });
  resumed.nextBatch(3); // unrelated position before restoring
  resumed.setState(saved);
  assert.deepEqual(Array.from({ length: 12 }, () => resumed.nextBatch(7)), expected);

  assert.throws(() => new IdentitySampler(dataset, { sampleNum: 2, seed: 9 }).setState(saved), /sampler state/);
  assert.throws(() => new IdentitySampler(dataset, { sampleNum: 3, seed: 10 }).setState(saved), /sampler state/);
});

test('deriveSeed separates its inputs', () => {
  const seen = new Set<number>();
  for (let a = 0; a < 20; a++) for (let b = 0; b < 20; b++) seen.add(deriveSeed(1, a, b));
  assert.equal(seen.size, 400);
  assert.notEqual(deriveSeed(1, 2), deriveSeed(2, 1));
  assert.notEqual(deriveSeed(0, 2 ** 32), deriveSeed(0, 0));
});
