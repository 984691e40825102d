// Verification callback: evaluates f_q on the configured .bin verification sets (and the run's own
// held-out synthetic pairs, if any) every `verifyEvery` steps and at the end, logging each result,
// appending it to metrics.jsonl and emitting 'verify'. In a distributed run every rank runs it, each
// embedding its share of the images (rank 0, which holds the run folder, writes the results).
import type * as tf from '@tensorflow/tfjs-core';
import type { Backbone } from '../backbones/index.js';
import { evaluateBin, formatVerificationLine, type EmbeddingShard, type VerificationResult } from '../eval/evaluateBin.js';
import { readVerificationBin, type VerificationSet } from '../eval/binReader.js';
import type { TrainConfig } from './config.js';
import type { RunFolder } from './runFolder.js';
import type { VerifyEvent } from './events.js';

export class VerificationCallback {
  /** The latest results (empty until the first verification). */
  readonly results: VerificationResult[] = [];
  private readonly sets: VerificationSet[];
  private readonly embedder: { inputSize: number; embed: (x: tf.Tensor4D) => tf.Tensor2D };

  constructor(
    private readonly config: TrainConfig,
    fq: Backbone,
    /** The run folder (null on ranks other than 0: they log and write nothing). */
    private readonly folder: RunFolder | null,
    private readonly log: (line: string) => void,
    private readonly onVerify: (e: VerifyEvent) => void,
    extraSets: readonly string[] = [],
    private readonly shard?: EmbeddingShard,
  ) {
    this.sets = [...config.verify, ...extraSets].map((p) => readVerificationBin(p));
    this.embedder = { inputSize: config.inputSize, embed: (x) => fq.apply(x, false) };
  }

  get enabled(): boolean {
    return this.sets.length > 0;
  }

  /** A periodic verification is due after this step (the end of training has its own). */
  due(step: number, totalSteps: number): boolean {
    const every = this.config.verifyEvery;
    return every > 0 && step % every === 0 && step < totalSteps && this.enabled;
  }

  async run(step: number): Promise<void> {
    const results: VerificationResult[] = [];
    for (const set of this.sets) {
      const r = await evaluateBin(this.embedder, set, { batchSize: Math.min(64, this.config.batchSize), shard: this.shard });
      results.push(r);
      if (!this.folder) continue;
      this.log(formatVerificationLine(r.name, step, r));
      this.folder.appendMetrics({ step, verify: r.name, accuracy: r.accuracy, std: r.std, xnorm: r.xnorm, valAtFar1e3: r.valAtFar1e3.val, tarAtFar1e3AllPairs: r.tarAtFar1e3AllPairs });
    }
    this.results.splice(0, this.results.length, ...results);
    this.onVerify({ step, results });
  }
}
