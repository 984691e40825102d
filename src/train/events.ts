// What a training run reports: per-step metrics, verification results, the final result, and the handle
// train() returns. Types only, shared by the trainer and its callbacks.
import type { EventEmitter } from 'node:events';
import type { VerificationResult } from '../eval/evaluateBin.js';

/** Seconds of one training step by part. */
export interface StepTimes {
  /** Waiting for the data pipeline (its workers read, render or decode in parallel with training). */
  data: number;
  /** AttFC: the EMA update of f_k and the forward of the key images (0 for the other heads). */
  classEncoder: number;
  /** f_q forward and backward (with data-parallel replicas: waiting for theirs too), clipping and SGD. */
  backbone: number;
  /**
   * Part of `backbone`: waiting, after the backward pass, for the other ranks' gradients (the allreduce
   * time the backward pass did not hide); 0 in one process.
   */
  gradientWait: number;
  /** The head's loss, its backward and its own updates. */
  head: number;
  /** The whole step, from asking for its batch to the end of its update (before callbacks). */
  step: number;
}

export interface StepMetrics {
  step: number;
  totalSteps: number;
  epoch: number;
  loss: number;
  lr: number;
  gradNorm: number;
  samplesPerSec: number;
  dataWaitShare: number;
  /** WASM heap size (its high-water mark); with data-parallel replicas, the largest of their heaps. */
  heapBytes: number;
  etaSec: number;
  head: Record<string, number>;
  /** Where this step's time went. */
  times: StepTimes;
}

export interface VerifyEvent {
  step: number;
  results: VerificationResult[];
}

export interface TrainResult {
  steps: number;
  /** Steps run by this call (fewer than `steps` after a resume). */
  stepsThisRun: number;
  seconds: number;
  samplesPerSec: number;
  finalLoss: number;
  identities: number;
  images: number;
  verification: VerificationResult[];
  output: string;
  modelDir: string | null;
  checkpoint: string | null;
  /** True when stop() ended training early (a checkpoint was still written). */
  interrupted: boolean;
  /** True when the resumed checkpoint was already the end of the run: nothing was trained or written. */
  alreadyFinished: boolean;
  /** True when TrainOptions.dryRun planned the run without training (steps counts the planned steps). */
  dryRun?: boolean;
}

export interface TrainOptions {
  /** Continue from a checkpoint folder (or a run's output folder: its newest checkpoint). */
  resume?: string;
  /**
   * Replace what a previous run left in the output folder (its config, metrics, checkpoints and model).
   * Without it a fresh run refuses a non-empty output folder.
   */
  overwrite?: boolean;
  /** Resume on a data set other than the one the checkpoint was trained on (refused otherwise). */
  allowDataChange?: boolean;
  /**
   * Without `resume`: continue the newest checkpoint of the output folder when it has one, else start the
   * run there (replacing what an attempt that never reached a checkpoint left). One command for the first
   * start and every restart (Kubernetes, SLURM requeues).
   */
  autoResume?: boolean;
  /**
   * Plan the run and stop: validate the config, open the data, choose the engine, size the head and
   * refuse what would not fit (heap, memory), then return without training or writing anything.
   */
  dryRun?: boolean;
  /** Where human-readable lines go (default stderr). */
  log?: (line: string) => void;
}

/** What train() returns: progress events plus a promise of the result. */
export interface TrainHandle extends EventEmitter {
  readonly done: Promise<TrainResult>;
  /** Finish the current step, write a checkpoint and end (what Ctrl-C does). */
  stop(): void;
  on(event: 'step', listener: (m: StepMetrics) => void): this;
  on(event: 'verify', listener: (e: VerifyEvent) => void): this;
  on(event: 'checkpoint', listener: (e: { step: number; path: string }) => void): this;
  on(event: 'log', listener: (line: string) => void): this;
  on(event: string, listener: (...args: never[]) => void): this;
}
