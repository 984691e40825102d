// A tiny synthetic face set shared by the training tests (cached in the temp folder between runs).
import os from 'node:os';
import path from 'node:path';
import { synthesize } from '../../src/data/synthetic/index.js';

export async function tinySynth(name = 'tiny', identities = 24, imagesPerIdentity = 4, size = 32): Promise<string> {
  const dir = path.join(os.tmpdir(), `attfc-test-synth-${name}-${identities}x${imagesPerIdentity}-${size}`);
  await synthesize(dir, { identities, imagesPerIdentity, size, seed: 7, verifyIdentities: 10, verifyPairs: 40, workers: 1 });
  return dir;
}
