// bench:train configurations, and the child that runs one of them: full training steps through the
// library's train() (data pipeline, backbone, head, backward, SGD), timed from the trainer's step events
// with the first steps excluded.
import * as tf from '@tensorflow/tfjs-core';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { engineInfo, describeEngine, shutdownEngine } from '../../src/engine/index.js';
import { train, type StepMetrics } from '../../src/train/trainer.js';
import { DEMO } from '../../src/cli/demoSetup.js';
import type { TrainConfigInput } from '../../src/train/config.js';

/** A backbone at one input size and the batch that fits the 4 GiB WASM heap for every head. */
export interface ThroughputSetup {
  name: string;
  backbone: 'mbf' | 'r18';
  inputSize: number;
  widthMultiplier: number;
  /**
   * Query batch. AttFC also forwards (K-1)*B key images; the trainer's heap estimate refuses larger
   * batches (MobileFaceNet at 112 needs ~2 GiB at 16 and does not fit 32; IResNet-18 fits 8 with room).
   */
  batchSize: number;
  /**
   * Steps per configuration. Small steps (the demo's ~1 s) vary by +-30% from step to step on this
   * machine, so they get more warm-up and more measured steps; 112x112 steps take 3-10 s each.
   */
  warmupSteps: number;
  measuredSteps: number;
}

/** The demo's model (src/cli/demoSetup.ts DEMO): MobileFaceNet x0.5 at 32x32, batch 64. */
export const DEMO_SETUP: ThroughputSetup = {
  name: `demo (mbf x${DEMO.widthMultiplier}, ${DEMO.size})`,
  backbone: DEMO.backbone,
  inputSize: DEMO.size,
  widthMultiplier: DEMO.widthMultiplier,
  batchSize: DEMO.batchSize,
  warmupSteps: 5,
  measuredSteps: 30,
};

export const FULL_SETUPS: ThroughputSetup[] = [
  DEMO_SETUP,
  { name: 'mbf 112', backbone: 'mbf', inputSize: 112, widthMultiplier: 1, batchSize: 16, warmupSteps: 2, measuredSteps: 6 },
  { name: 'r18 112', backbone: 'r18', inputSize: 112, widthMultiplier: 1, batchSize: 8, warmupSteps: 2, measuredSteps: 6 },
];

export interface ThroughputHead {
  head: 'attfc' | 'fc' | 'pfc';
  label: string;
  config: Partial<TrainConfigInput>;
}

export const THROUGHPUT_HEADS: ThroughputHead[] = [
  { head: 'attfc', label: 'AttFC K=3', config: { sampleNum: 3 } },
  { head: 'fc', label: 'FullFC', config: {} },
  { head: 'pfc', label: 'PartialFC r=0.1', config: { sampleRate: 0.1 } },
];

export interface ThroughputJob {
  setup: ThroughputSetup;
  head: ThroughputHead;
  data: string;
  output: string;
  warmupSteps: number;
  measuredSteps: number;
  seed: number;
  /** The trainer's parallel mode: 'data' (the default on WASM with 2+ cores) or 'threads'. */
  parallel: 'data' | 'threads';
  /** The engine (torch: libtorch through attfc's addon, one process, its own threads). */
  backend: 'wasm' | 'torch';
}

export interface ThroughputResult {
  setup: string;
  backbone: string;
  inputSize: number;
  widthMultiplier: number;
  batchSize: number;
  head: string;
  label: string;
  /** Images through f_q per step (B). */
  queryImagesPerStep: number;
  /** Images through f_k per step ((K-1)*B for AttFC, else 0). */
  keyImagesPerStep: number;
  warmupSteps: number;
  measuredSteps: number;
  /** Mean wall time of a measured step. */
  stepSeconds: number;
  /** Fastest and slowest measured step. */
  stepSecondsMin: number;
  stepSecondsMax: number;
  /** Training samples (query images) per second. */
  queryImagesPerSec: number;
  /** Query plus key images per second: everything a backbone forwards. */
  totalImagesPerSec: number;
  /** Share of the measured steps' time spent waiting for the data pipeline. */
  dataWaitShare: number;
  /** WASM heap size at its high-water mark (the heap never shrinks); 0 on torch. */
  peakHeapBytes: number;
  /** Backend torch: the most libtorch memory its tensors held at a step's end; 0 on WASM. */
  peakNativeBytes: number;
  engine: string;
  parallel: 'data' | 'threads';
  backend: 'wasm' | 'torch';
}

export function throughputConfig(job: ThroughputJob): TrainConfigInput {
  const s = job.setup;
  return {
    data: job.data,
    output: job.output,
    backbone: s.backbone,
    inputSize: s.inputSize,
    widthMultiplier: s.widthMultiplier,
    head: job.head.head,
    batchSize: s.batchSize,
    steps: job.warmupSteps + job.measuredSteps,
    seed: job.seed,
    verify: [],
    verifyEvery: 0,
    // a metrics window per step, so dataWaitShare is per step
    logEvery: 1,
    checkpointEvery: 0,
    keepCheckpoints: 1,
    export: false,
    parallel: job.parallel,
    ...job.head.config,
  };
}

/** Runs one job in this process and returns its measurements. */
export async function measureThroughput(job: ThroughputJob): Promise<ThroughputResult> {
  const config = throughputConfig(job);
  process.env.ATTFC_BACKEND = job.backend; // the trainer starts the engine
  const times: number[] = [];
  const metrics: StepMetrics[] = [];
  let peakNativeBytes = 0;
  // the bench's own scratch run folder, replaced on every bench run
  const handle = train(config, { overwrite: true, log: (l) => process.stderr.write(l + '\n') });
  handle.on('step', (m) => {
    times.push(performance.now());
    metrics.push(m);
    const native = (tf.memory() as { numBytesInTorch?: number }).numBytesInTorch;
    if (native) peakNativeBytes = Math.max(peakNativeBytes, native);
  });
  await handle.done;
  const w = job.warmupSteps;
  let seconds = 0;
  let waited = 0;
  const steps: number[] = [];
  for (let i = w; i < times.length; i++) {
    const dt = (times[i] - times[i - 1]) / 1000;
    steps.push(dt);
    seconds += dt;
    waited += dt * metrics[i].dataWaitShare;
  }
  const measured = times.length - w;
  const B = job.setup.batchSize;
  const keys = job.head.head === 'attfc' ? ((config.sampleNum ?? 3) - 1) * B : 0;
  const stepSeconds = seconds / measured;
  const info = engineInfo();
  const env = JSON.parse(readFileSync(path.join(job.output, 'environment.json'), 'utf8')) as { parallel: { mode: string; replicas: number } };
  const engine = info ? (env.parallel.mode === 'data' ? `data-parallel ${env.parallel.replicas} x ${describeEngine(info).replace('backend ', '')}` : describeEngine(info)) : 'unknown';
  return {
    setup: job.setup.name,
    backbone: job.setup.backbone,
    inputSize: job.setup.inputSize,
    widthMultiplier: job.setup.widthMultiplier,
    batchSize: B,
    head: job.head.head,
    label: job.head.label,
    queryImagesPerStep: B,
    keyImagesPerStep: keys,
    warmupSteps: w,
    measuredSteps: measured,
    stepSeconds,
    stepSecondsMin: Math.min(...steps),
    stepSecondsMax: Math.max(...steps),
    queryImagesPerSec: B / stepSeconds,
    totalImagesPerSec: (B + keys) / stepSeconds,
    dataWaitShare: seconds > 0 ? waited / seconds : 0,
    peakHeapBytes: Math.max(0, ...metrics.map((m) => m.heapBytes)),
    peakNativeBytes,
    engine,
    parallel: job.parallel,
    backend: job.backend,
  };
}

/** Entry point of the child (`--job <json>`, parsed by the script); prints one JSON line. */
export async function runThroughputChild(job: ThroughputJob): Promise<void> {
  const result = await measureThroughput(job);
  process.stdout.write(JSON.stringify(result) + '\n');
  shutdownEngine();
}
