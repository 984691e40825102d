// A tiny synthetic face set shared by the training tests (cached in the temp folder between runs).
import os from 'node:os';
import path from 'node:path';
import { synthesize } from '../../src/data/synthetic/index.js';
import type { TrainConfigInput } from '../../src/train/config.js';

export async function tinySynth(
  name = 'tiny',
  identities = 24,
  imagesPerIdentity = 4,
  size = 32,
  options: { verify?: { identities: number; pairs: number }; seed?: number } = {},
): Promise<string> {
  const verify = options.verify ?? { identities: 10, pairs: 40 };
  const seed = options.seed ?? 7;
  const held = verify.identities === 10 && verify.pairs === 40 ? '' : `-v${verify.identities}x${verify.pairs}`;
  const dir = path.join(os.tmpdir(), `attfc-test-synth-${name}-${identities}x${imagesPerIdentity}-${size}${held}${seed === 7 ? '' : `-seed${seed}`}`);
  await synthesize(dir, { identities, imagesPerIdentity, size, seed, verifyIdentities: verify.identities, verifyPairs: verify.pairs, workers: 1 });
  return dir;
}

/** The training tests' small AttFC run on a tinySynth set: MobileFaceNet x0.25 at 32x32, batch 8. */
export function tinyTrainConfig(data: string, output: string): TrainConfigInput {
  return {
    data,
    output,
    backbone: 'mbf',
    widthMultiplier: 0.25,
    inputSize: 32,
    embeddingSize: 32,
    batchSize: 8,
    head: 'attfc',
    queueSize: 16,
    lr: 0.05,
    workers: 1,
    logEvery: 1,
    seed: 3,
  };
}
