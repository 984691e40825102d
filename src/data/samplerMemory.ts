// Measures what the sampler and its data set keep in memory: opens a data set, draws batches through an
// epoch boundary, and reports the growth of the JS heap (objects) and of typed-array memory (flat
// tables) after a full garbage collection. At millions of identities the JS heap must not grow with
// them: labels and per-identity image lists are arithmetic or flat arrays, never an object per identity.
import v8 from 'node:v8';
import vm from 'node:vm';
import { openDataset } from './dataset.js';
import { IdentitySampler } from './sampler.js';

export interface SamplerMemory {
  source: string;
  identities: number;
  images: number;
  /** Growth of the V8 heap (JS objects) once the sampler exists and has crossed an epoch. */
  heapBytes: number;
  /** Growth of ArrayBuffer memory (typed arrays: the epoch's permutation). */
  arrayBufferBytes: number;
  /** Growth of the process's resident memory. */
  rssBytes: number;
  /** Batches drawn, two of them across the epoch boundary. */
  batches: number;
  /** The sampler's epoch after them (1), read after the measurement so the sampler is alive for it. */
  epoch: number;
}

/** A full garbage collection (the flag can be set at run time; `gc` then exists in new contexts). */
function collector(): () => void {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
}

/** Opens `source`, builds an IdentitySampler (K = sampleNum), draws batches across an epoch boundary and measures. */
export function measureSamplerMemory(source: string, { batchSize = 128, sampleNum = 3, seed = 0 } = {}): SamplerMemory {
  const gc = collector();
  gc();
  const before = process.memoryUsage();
  const dataset = openDataset(source);
  const sampler = new IdentitySampler(dataset, { sampleNum, seed });
  let batches = 0;
  for (; batches < 4; batches++) sampler.nextBatch(batchSize);
  // jump to the last batch of the epoch: the next two batches start the next epoch's permutation
  const state = sampler.getState();
  sampler.setState({ ...state, position: dataset.numImages - Math.floor(batchSize / 2) });
  for (let i = 0; i < 2; i++, batches++) sampler.nextBatch(batchSize);
  gc();
  const after = process.memoryUsage();
  const result: SamplerMemory = {
    source,
    identities: dataset.numIdentities,
    images: dataset.numImages,
    heapBytes: after.heapUsed - before.heapUsed,
    arrayBufferBytes: after.arrayBuffers - before.arrayBuffers,
    rssBytes: after.rss - before.rss,
    batches,
    epoch: sampler.currentEpoch,
  };
  dataset.close();
  return result;
}
