// One bench:accuracy job, run in its own process: train a head variant with the library's train(),
// reload the final checkpoint, verify f_q on the held-out synthetic pairs and, for AttFC variants, look
// at the class centres. Or the untrained baseline. Prints one JSON line (AccuracyRunResult).
import * as tf from '@tensorflow/tfjs-core';
import { initEngine, shutdownEngine } from '../../src/engine/index.js';
import { createBackbone, type Backbone } from '../../src/backbones/index.js';
import { evaluateBin, type VerificationResult } from '../../src/eval/evaluateBin.js';
import { evaluateUntrained } from '../../src/eval/untrained.js';
import { train, type StepMetrics } from '../../src/train/trainer.js';
import { loadCheckpoint, type ArrayEntry } from '../../src/train/checkpoint.js';
import type { TrainConfigInput } from '../../src/train/config.js';
import type { AttentionMode } from '../../src/heads/attfc/index.js';
import { analyseCentres, type CentreAnalysis } from './accuracyCentres.js';
import { meanOfKey } from './accuracyStats.js';

export type AccuracyJob =
  | {
      kind: 'train';
      variant: string;
      head: string;
      seed: number;
      config: TrainConfigInput;
      bin: string;
      evalBatch: number;
      /** Run the class-centre analysis (AttFC variants). */
      centres?: { identities: number; draws: number };
    }
  | { kind: 'baseline'; backbone: string; inputSize: number; widthMultiplier: number; seed: number; bin: string; evalBatch: number };

export interface AccuracyRunResult {
  variant: string;
  head: string;
  seed: number;
  accuracy: number;
  std: number;
  tarAtFar1e3: number;
  auc: number;
  trainSeconds: number;
  evalSeconds: number;
  /** Query images per second over the whole run (as TrainResult reports it). */
  samplesPerSec: number;
  finalLoss: number;
  /** Head diagnostics averaged over the second half of training. */
  training: Record<string, number>;
  centres?: CentreAnalysis;
}

function restore(net: Backbone, prefix: string, arrays: Record<string, ArrayEntry>, where: string): void {
  for (const v of net.variables()) {
    const a = arrays[`${prefix}/${v.name}`];
    if (!a || a.length !== v.variable.size) throw new Error(`${where}: ${prefix}/${v.name} missing or of the wrong size`);
    v.variable.assign(tf.tensor(a, v.variable.shape, v.variable.dtype));
  }
}

function pick(v: VerificationResult): Pick<AccuracyRunResult, 'accuracy' | 'std' | 'tarAtFar1e3' | 'auc'> {
  return { accuracy: v.accuracy, std: v.std, tarAtFar1e3: v.tarAtFar1e3AllPairs, auc: v.auc };
}

async function runTrain(job: Extract<AccuracyJob, { kind: 'train' }>): Promise<AccuracyRunResult> {
  const steps: StepMetrics[] = [];
  // the bench's own scratch run folder, replaced on every bench run
  const handle = train(job.config, { overwrite: true, log: (l) => process.stderr.write(l + '\n') });
  handle.on('step', (m) => steps.push(m));
  const r = await handle.done;
  if (!r.checkpoint) throw new Error(`${job.variant} seed ${job.seed}: training wrote no checkpoint`);
  const late = steps.slice(Math.floor(steps.length / 2)).map((m) => m.head);
  const keys = new Set(late.flatMap((h) => Object.keys(h)));
  const training = Object.fromEntries([...keys].map((key) => [key, meanOfKey(late, key)]));

  const ckpt = loadCheckpoint(r.checkpoint);
  const c = job.config;
  const opts = { inputSize: c.inputSize, widthMultiplier: c.widthMultiplier, seed: job.seed };
  const fq = createBackbone(String(c.backbone), opts);
  restore(fq, 'fq', ckpt.arrays, r.checkpoint);
  const t0 = performance.now();
  const v = await evaluateBin({ inputSize: c.inputSize ?? 112, embed: (x) => fq.apply(x, false) }, job.bin, { batchSize: job.evalBatch });
  process.stderr.write(`${job.variant} seed ${job.seed}: accuracy ${v.accuracy.toFixed(4)} +- ${v.std.toFixed(4)}\n`);
  let centres: CentreAnalysis | undefined;
  if (job.centres && c.head === 'attfc') {
    const fk = createBackbone(String(c.backbone), opts);
    restore(fk, 'fk', ckpt.arrays, r.checkpoint);
    centres = await analyseCentres({
      dataset: c.data,
      fq,
      fk,
      inputSize: c.inputSize ?? 112,
      keysPerSample: (c.sampleNum ?? 3) - 1,
      attention: (c.attention ?? 'softmax') as AttentionMode,
      temperature: c.temperature ?? 1,
      identities: job.centres.identities,
      draws: job.centres.draws,
      seed: 1000 + job.seed,
    });
    fk.dispose();
  }
  fq.dispose();
  return {
    variant: job.variant,
    head: job.head,
    seed: job.seed,
    ...pick(v),
    trainSeconds: r.seconds,
    evalSeconds: (performance.now() - t0) / 1000,
    samplesPerSec: r.samplesPerSec,
    finalLoss: r.finalLoss,
    training,
    ...(centres ? { centres } : {}),
  };
}

/** Random-init f_q, batch-statistics BN (its running statistics mean nothing yet): the chance-level reference. */
async function runBaseline(job: Extract<AccuracyJob, { kind: 'baseline' }>): Promise<AccuracyRunResult> {
  await initEngine();
  const t0 = performance.now();
  const v = await evaluateUntrained(job.backbone, { inputSize: job.inputSize, widthMultiplier: job.widthMultiplier, seed: job.seed }, job.bin, job.evalBatch);
  return { variant: 'untrained', head: '-', seed: job.seed, ...pick(v), trainSeconds: 0, evalSeconds: (performance.now() - t0) / 1000, samplesPerSec: 0, finalLoss: NaN, training: {} };
}

/** Entry point of the child (`--job <json>`, parsed by the script). */
export async function runAccuracyChild(job: AccuracyJob): Promise<void> {
  const result = job.kind === 'baseline' ? await runBaseline(job) : await runTrain(job);
  process.stdout.write(JSON.stringify(result) + '\n');
  shutdownEngine();
}
