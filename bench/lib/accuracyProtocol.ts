// The fixed protocol of bench:accuracy: one synthetic data set, one small backbone and one training
// recipe for every head variant; only the head (and its own switches) differs between runs.
import type { TrainConfigInput } from '../../src/train/config.js';
import { defaultQueueSize } from '../../src/heads/attfc/index.js';

export interface AccuracyProtocol {
  /** Training identities of the synthetic set (a multiple of the family size 4, so no family straddles). */
  identities: number;
  imagesPerIdentity: number;
  /** Held-out identities (ids after the training ones) that make up the verification pairs. */
  verifyIdentities: number;
  verifyPairs: number;
  /** Image side of the synthetic set and the training input. */
  size: number;
  dataSeed: number;
  backbone: 'mbf';
  widthMultiplier: number;
  batchSize: number;
  steps: number;
  warmupSteps: number;
  lr: number;
  /** ArcFace scale and additive angular margin, the same for every head. */
  marginS: number;
  marginM: number;
  /** EMA momentum of AttFC's class encoder for this short schedule (the reference uses 0.999). */
  emaMomentum: number;
  /** Training seeds; every variant runs once per seed. */
  seeds: number[];
  /** Training identities sampled for the class-centre analysis, and GCC draws per identity. */
  centreIdentities: number;
  centreDraws: number;
}

/**
 * Sized for ~35-45 min on the 2-core machine (2 runs in parallel, 1 WASM thread each). 1,000 identities
 * so that FC and Partial FC see every class ~10 times in 150 steps of 64: with more identities the
 * learned-centre heads barely move in the budget. With ArcFace s=64, m=0.5 FullFC stayed at the
 * untrained level (loss ~49 after 60 steps); s=32, m=0.2 with an 8-step warm-up learns for every head.
 */
export const FULL_PROTOCOL: AccuracyProtocol = {
  identities: 1000,
  imagesPerIdentity: 6,
  verifyIdentities: 200,
  verifyPairs: 2000,
  size: 32,
  dataSeed: 0,
  backbone: 'mbf',
  widthMultiplier: 0.5,
  batchSize: 64,
  steps: 150,
  warmupSteps: 8,
  lr: 0.1,
  marginS: 32,
  marginM: 0.2,
  emaMomentum: 0.95,
  seeds: [0, 1],
  centreIdentities: 300,
  centreDraws: 4,
};

/** Same data set (so the cache is shared), one seed, 30 steps: a few minutes. */
export const QUICK_PROTOCOL: AccuracyProtocol = {
  ...FULL_PROTOCOL,
  steps: 30,
  warmupSteps: 3,
  seeds: [0],
  centreIdentities: 100,
  centreDraws: 2,
};

export interface HeadVariant {
  /** Stable key in the JSON output. */
  variant: string;
  head: 'fc' | 'pfc' | 'attfc';
  /** Human label for the table. */
  label: string;
  /** Head-specific config keys. */
  config: Partial<TrainConfigInput>;
}

/** The DCC size every AttFC variant uses (the paper's default, 30% of the identities). */
export function dccSize(p: AccuracyProtocol): number {
  return defaultQueueSize(p.identities, p.batchSize, 0.3);
}

/** The compared heads. Partial FC's rate makes its active class centres equal the DCC size. */
export function headVariants(p: AccuracyProtocol): HeadVariant[] {
  const S = dccSize(p);
  const r = S / p.identities;
  const attfc = { emaMomentum: p.emaMomentum, queueSize: S };
  return [
    { variant: 'fc', head: 'fc', label: 'FullFC', config: {} },
    { variant: 'pfc', head: 'pfc', label: `PartialFC r=${r.toFixed(3)} (${S} centres)`, config: { sampleRate: r } },
    { variant: 'dcq', head: 'attfc', label: 'DCQ-style (AttFC K=2)', config: { ...attfc, sampleNum: 2, attention: 'single' } },
    { variant: 'attfc-mean', head: 'attfc', label: 'AttFC K=3 mean attention', config: { ...attfc, sampleNum: 3, attention: 'mean' } },
    { variant: 'attfc', head: 'attfc', label: 'AttFC K=3 softmax (default)', config: { ...attfc, sampleNum: 3, attention: 'softmax' } },
    { variant: 'attfc-nomask', head: 'attfc', label: 'AttFC K=3 softmax, no masking', config: { ...attfc, sampleNum: 3, attention: 'softmax', masking: false } },
  ];
}

/** The full training config of one run. Verification is done by the bench itself after training. */
export function runConfig(p: AccuracyProtocol, v: HeadVariant, seed: number, data: string, output: string, workers: number): TrainConfigInput {
  return {
    data,
    output,
    backbone: p.backbone,
    inputSize: p.size,
    widthMultiplier: p.widthMultiplier,
    head: v.head,
    batchSize: p.batchSize,
    steps: p.steps,
    warmupSteps: p.warmupSteps,
    lr: p.lr,
    margin: 'arcface',
    marginS: p.marginS,
    marginM2: p.marginM,
    seed,
    workers,
    verify: [],
    verifyEvery: 0,
    logEvery: 10,
    checkpointEvery: 0,
    keepCheckpoints: 1,
    export: false,
    ...v.config,
  };
}

/** One line describing the protocol, printed above the table and stored in the JSON. */
export function describeProtocol(p: AccuracyProtocol): string {
  return (
    `SYNTHETIC faces: ${p.identities} training identities x ${p.imagesPerIdentity} images, ${p.size}x${p.size}; ` +
    `verification ${p.verifyPairs} pairs of ${p.verifyIdentities} held-out identities (80% of negatives are look-alike siblings). ` +
    `MobileFaceNet x${p.widthMultiplier}, batch ${p.batchSize}, ${p.steps} steps, lr ${p.lr} cosine with ${p.warmupSteps} warm-up steps, ` +
    `ArcFace s=${p.marginS} m=${p.marginM} for ALL heads (reduced from s=64 m=0.5, under which FullFC stayed at the untrained level in this budget), ` +
    `AttFC DCC ${dccSize(p)} slots, class-encoder EMA ${p.emaMomentum} (the reference 0.999 would leave f_k ${(100 * 0.999 ** p.steps).toFixed(0)}% random init after ${p.steps} steps); ` +
    `seeds ${p.seeds.join(', ')}`
  );
}
