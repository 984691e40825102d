// Metrics callback: after every step, the numbers a user watches (loss, learning rate, gradient norm,
// throughput and data-wait share over the current logging window, heap, ETA, head diagnostics, where the
// step's time went), emitted as a 'step' event; every `logEvery` steps and at the last one, also a line
// of metrics.jsonl (times as means over the window).
import { wasmHeapBytes } from '../engine/index.js';
import type { DataPipeline } from '../data/pipeline.js';
import type { GradientExchange } from './dataParallel/exchange.js';
import type { TrainConfig } from './config.js';
import type { RunFolder } from './runFolder.js';
import type { StepMetrics, StepTimes } from './events.js';

export interface StepOutcome {
  step: number;
  epoch: number;
  loss: number;
  lr: number;
  gradNorm: number;
  times: StepTimes;
  /** The head's diagnostics of this step (over the whole batch). */
  diagnostics: Record<string, number>;
}

const NO_TIMES: StepTimes = { data: 0, classEncoder: 0, backbone: 0, gradientWait: 0, head: 0, step: 0 };

export class MetricsCallback {
  private windowStart = performance.now();
  private windowSteps = 0;
  private windowTimes: StepTimes = { ...NO_TIMES };
  private waitBefore: number;

  constructor(
    private readonly config: TrainConfig,
    private readonly totalSteps: number,
    private readonly parts: { pipeline: DataPipeline; group: GradientExchange | null; folder: RunFolder | null },
    private readonly onStep: (m: StepMetrics) => void,
  ) {
    this.waitBefore = parts.pipeline.stats().waitMs;
  }

  afterStep(o: StepOutcome): void {
    const { pipeline, group, folder } = this.parts;
    const { batchSize, logEvery } = this.config;
    this.windowSteps++;
    for (const k of Object.keys(NO_TIMES) as (keyof StepTimes)[]) this.windowTimes[k] += o.times[k];
    const now = performance.now();
    const stats = pipeline.stats();
    const elapsed = (now - this.windowStart) / 1000;
    const sps = (this.windowSteps * batchSize) / Math.max(elapsed, 1e-9);
    const m: StepMetrics = {
      step: o.step,
      totalSteps: this.totalSteps,
      epoch: o.epoch,
      loss: o.loss,
      lr: o.lr,
      gradNorm: o.gradNorm,
      samplesPerSec: sps,
      dataWaitShare: Math.min(1, (stats.waitMs - this.waitBefore) / Math.max(1, now - this.windowStart)),
      // every replica has its own heap; report the fullest (usually rank 0, which also holds the head)
      heapBytes: Math.max(wasmHeapBytes(), group?.largestWorkerHeapBytes() ?? 0),
      etaSec: ((this.totalSteps - o.step) * batchSize) / Math.max(sps, 1e-9),
      head: o.diagnostics,
      times: o.times,
    };
    this.onStep(m);
    if (o.step % logEvery === 0 || o.step === this.totalSteps) {
      folder?.appendMetrics({ step: o.step, epoch: m.epoch, loss: o.loss, lr: o.lr, gradNorm: m.gradNorm, samplesPerSec: sps, dataWaitShare: m.dataWaitShare, heapBytes: m.heapBytes, badImages: stats.badImages, ...prefixKeys('head.', m.head), ...this.meanTimes() });
      this.windowStart = now;
      this.windowSteps = 0;
      this.windowTimes = { ...NO_TIMES };
      this.waitBefore = stats.waitMs;
    }
  }

  /** Mean seconds per step of the logging window, as `time.<part>` keys. */
  private meanTimes(): Record<string, number> {
    const n = Math.max(1, this.windowSteps);
    return prefixKeys('time.', Object.fromEntries(Object.entries(this.windowTimes).map(([k, v]) => [k, v / n])));
  }
}

function prefixKeys(prefix: string, o: Record<string, number>): Record<string, number> {
  const r: Record<string, number> = {};
  for (const [k, v] of Object.entries(o)) r[prefix + k] = v;
  return r;
}
