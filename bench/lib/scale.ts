// bench:scale's runs, each in its own process: the uninterrupted run (fresh, with a checkpoint at half)
// and the resumed run (from that checkpoint, into a folder of its own, for a few steps). Both go through
// the library's train() on the on-demand synthetic source and report per step: loss, where the time went,
// and memory (RSS, WASM heap, libtorch memory); the first also its checkpoints' size and write time.
import * as tf from '@tensorflow/tfjs-core';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { shutdownEngine, engineInfo, describeEngine } from '../../src/engine/index.js';
import { AttfcError } from '../../src/errors.js';
import { train, type StepMetrics } from '../../src/train/trainer.js';
import type { TrainConfigInput } from '../../src/train/config.js';

/** One run of the benchmark (the parent builds it from the flags). */
export interface ScaleJob {
  phase: 'main' | 'resume';
  data: string;
  output: string;
  /** Resumed run: the checkpoint to continue from, and the steps to take before stopping. */
  resumeFrom?: string;
  resumeSteps?: number;
  config: TrainConfigInput;
}

export interface ScaleStep {
  step: number;
  loss: number;
  times: StepMetrics['times'];
  /** Wall seconds since the previous step's event (or since train() was called). */
  wallSeconds: number;
  rssBytes: number;
  heapBytes: number;
  /** Backend torch: libtorch memory held by tensors at the step's end. */
  nativeBytes: number;
}

export interface ScaleCheckpoint {
  step: number;
  path: string;
  bytes: number;
  /** From the step's event to the checkpoint's: the write (with its checksum and fsync). */
  writeSeconds: number;
}

export type ScaleRunResult =
  | {
      ok: true;
      phase: ScaleJob['phase'];
      engine: string;
      /** From train() to the first step's event: engine, data, model, head (and, resumed, loading the checkpoint). */
      startSeconds: number;
      steps: ScaleStep[];
      checkpoints: ScaleCheckpoint[];
      peakRssBytes: number;
      verification: { name: string; accuracy: number; pairs: number }[];
      log: string[];
    }
  | { ok: false; phase: ScaleJob['phase']; error: string; log: string[] };

function folderBytes(dir: string): number {
  let total = 0;
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    const s = statSync(p);
    total += s.isDirectory() ? folderBytes(p) : s.size;
  }
  return total;
}

/** Runs one job in this process. A configuration the trainer refuses (AttfcError) is a result, not a crash. */
export async function runScaleJob(job: ScaleJob): Promise<ScaleRunResult> {
  const lines: string[] = [];
  const log = (l: string) => {
    lines.push(l);
    process.stderr.write(l + '\n');
  };
  const steps: ScaleStep[] = [];
  const checkpoints: ScaleCheckpoint[] = [];
  let peakRss = process.memoryUsage().rss;
  const t0 = performance.now();
  let last = t0;
  let lastStepAt = t0;
  const handle =
    job.phase === 'main'
      ? train(job.config, { overwrite: true, log })
      : train({ output: job.output }, { resume: job.resumeFrom, log });
  handle.on('step', (m) => {
    const now = performance.now();
    const rss = process.memoryUsage().rss;
    peakRss = Math.max(peakRss, rss);
    steps.push({
      step: m.step,
      loss: m.loss,
      times: m.times,
      wallSeconds: (now - last) / 1000,
      rssBytes: rss,
      heapBytes: m.heapBytes,
      nativeBytes: (tf.memory() as { numBytesInTorch?: number }).numBytesInTorch ?? 0,
    });
    last = lastStepAt = now;
    if (job.phase === 'resume' && steps.length >= (job.resumeSteps ?? 1)) handle.stop();
  });
  handle.on('checkpoint', (e) => {
    const now = performance.now();
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
    checkpoints.push({ step: e.step, path: e.path, bytes: folderBytes(e.path), writeSeconds: (now - lastStepAt) / 1000 });
    // the next step's wall time starts after the write
    last = now;
  });
  try {
    const r = await handle.done;
    const info = engineInfo();
    const env = JSON.parse(readFileSync(path.join(job.output, 'environment.json'), 'utf8')) as { parallel: { mode: string; replicas: number } };
    const engine = info ? describeEngine(info) : 'unknown';
    return {
      ok: true,
      phase: job.phase,
      engine: env.parallel.mode === 'data' ? `data-parallel, ${env.parallel.replicas} replicas of ${engine}` : engine,
      startSeconds: steps.length ? steps[0]!.wallSeconds - steps[0]!.times.step : 0,
      steps,
      checkpoints,
      peakRssBytes: peakRss,
      verification: r.verification.map((v) => ({ name: v.name, accuracy: v.accuracy, pairs: v.pairs })),
      log: lines,
    };
  } catch (e) {
    if (!(e instanceof AttfcError)) throw e;
    return { ok: false, phase: job.phase, error: e.message, log: lines };
  }
}

/** Entry point of a child (`--child --job <json>`): prints one JSON line. */
export async function runScaleChild(job: ScaleJob): Promise<void> {
  const result = await runScaleJob(job);
  process.stdout.write(JSON.stringify(result) + '\n');
  shutdownEngine();
}
