// Checkpoint policy: what a training checkpoint holds and how a run comes back from one. It holds f_q
// and f_k weights, the optimizer's momentum, the head's state, the data pipeline's position, every
// replica's dropout generators and the configuration, so a resumed run continues exactly where it
// stopped; and, to tell when it cannot, the data set's fingerprint and the rows each replica's batch
// norm saw. The file format is checkpoint.ts's. A head split across the ranks (--shard-head) is saved
// whole, in the one-process format, so any world size, sharded or not, resumes from it.
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { Backbone } from '../backbones/index.js';
import type { DataPipeline, PipelineState } from '../data/pipeline.js';
import type { Head } from '../heads/types.js';
import { AttfcError } from '../errors.js';
import { nonFiniteValue } from '../util/finite.js';
import type { DatasetFingerprint } from '../data/fingerprint.js';
import type { TrainConfig } from './config.js';
import type { Sgd } from './sgd.js';
import type { RankRandomState } from './dataParallel/shared.js';
import { checkpointDirName, saveCheckpoint, type ArrayEntry, type CheckpointData } from './checkpoint.js';

export interface CheckpointedState {
  config: TrainConfig;
  fq: Backbone;
  fk: Backbone | null;
  sgd: Sgd;
  head: Head;
  pipeline: DataPipeline;
  data: DatasetFingerprint;
  /** Rows of each batch every replica's batch norm normalises together (one entry per replica). */
  batchNormRows: number[];
  /** The workers' dropout states (ranks 1..); set once the replicas run (or, distributed, gathered from the ranks). */
  replicaRandomStates?: () => RankRandomState[];
  /**
   * False on ranks of a distributed run other than 0: write() takes part in what every rank must do
   * (gathering the ranks' dropout states) and writes nothing. Default true.
   */
  writer?: boolean;
}

/** What a restore hands back beyond the step: for the replicas, and for the log. */
export interface Restored {
  step: number;
  /** Dropout states of ranks 1.. saved in the checkpoint (empty for older checkpoints). */
  replicaRandomStates: RankRandomState[];
  /** The batch-norm row groups at save time, or null for older checkpoints. */
  batchNormRows: number[] | null;
}

export class CheckpointPolicy {
  /** The newest checkpoint written or resumed from (named when training diverges). */
  last: string | null = null;
  /** Step of `last`: a stop right after a periodic checkpoint finds it already written. */
  private lastStep = -1;

  constructor(
    private readonly root: string,
    private readonly state: CheckpointedState,
    private readonly onWrite: (e: { step: number; path: string }) => void,
  ) {}

  /** A periodic checkpoint is due after this step (the last step always writes one, elsewhere). */
  due(step: number, totalSteps: number): boolean {
    const every = this.state.config.checkpointEvery;
    return every > 0 && step % every === 0 && step < totalSteps;
  }

  write(step: number): string {
    if (step === this.lastStep && this.last) return this.last;
    const { config, fq, fk, sgd, head, pipeline } = this.state;
    const others = this.state.replicaRandomStates?.() ?? [];
    // a sharded head's state and optimizer slots come together on rank 0, with every rank taking part
    const shardedHead = head.sharding ? { state: head.getState(), slots: this.gatherHeadSlots() } : null;
    if (this.state.writer === false) {
      // rank 0 writes this one
      this.last = path.join(this.root, checkpointDirName(step));
      this.lastStep = step;
      return this.last;
    }
    const arrays: Record<string, ArrayEntry> = {};
    dumpVariables('fq', fq, arrays);
    if (fk) dumpVariables('fk', fk, arrays);
    sgd.momentumBuffers().forEach((m, i) => (arrays[`opt/${i}`] = shardedHead?.slots.get(i) ?? (m.dataSync().slice() as Float32Array)));
    const hs = shardedHead?.state ?? head.getState();
    for (const [k, v] of Object.entries(hs.arrays)) arrays[`head/${k}`] = v;
    // a diverging run can keep a finite loss while its batch-norm statistics are already Inf/NaN
    for (const [name, arr] of Object.entries(arrays)) {
      const bad = arr instanceof Float32Array ? nonFiniteValue(arr) : null;
      if (bad)
        throw new AttfcError(
          `training diverged: ${name} holds a non-finite value (${bad}) at step ${step}; checkpoint not written; ` +
            `the last good checkpoint is ${this.last ?? '(none yet)'}; lower --lr or add --warmup-steps`,
        );
    }
    const dropout: RankRandomState[] = [
      { fq: fq.randomState?.() ?? null, fk: fk?.randomState?.() ?? null },
      ...others,
    ];
    const json = {
      config,
      head: hs.json,
      pipeline: pipeline.getState(),
      dropout,
      batchNormRows: this.state.batchNormRows,
      data: this.state.data,
      savedAt: new Date().toISOString(),
    };
    const p = saveCheckpoint(this.root, { step, arrays, json }, config.keepCheckpoints);
    this.last = p;
    this.lastStep = step;
    this.onWrite({ step, path: p });
    return p;
  }

  /**
   * Loads every part of the state from a checkpoint read from `where`. `sameImages`: the data has the
   * checkpoint's images, so the sampler continues at its position (else at the start of its epoch).
   */
  restore(ckpt: CheckpointData, where: string, sameImages = true): Restored {
    const { fq, fk, sgd, head, pipeline } = this.state;
    for (const [name, arr] of Object.entries(ckpt.arrays)) {
      const bad = arr instanceof Float32Array ? nonFiniteValue(arr) : null;
      if (bad) throw new AttfcError(`${where}: ${name} holds a non-finite value (${bad}); the run had diverged by then: resume from an earlier checkpoint`);
    }
    restoreVariables('fq', fq, ckpt.arrays, where);
    if (fk) restoreVariables('fk', fk, ckpt.arrays, where);
    const firstHeadSlot = sgd.momentumBuffers().length - head.trainableVariables().length;
    sgd.momentumBuffers().forEach((m, i) => {
      let arr = ckpt.arrays[`opt/${i}`];
      // a sharded head's slot is saved whole: this rank takes its rows
      if (head.sharding && i >= firstHeadSlot && arr instanceof Float32Array) arr = head.sharding.sliceTrainable(i - firstHeadSlot, arr);
      if (!arr || arr.length !== m.size) throw new AttfcError(`${where}: optimizer state opt/${i} is missing or has the wrong size`);
      m.assign(tf.tensor(arr, m.shape));
    });
    const headArrays: Record<string, Float32Array | Int32Array> = {};
    for (const [k, v] of Object.entries(ckpt.arrays)) if (k.startsWith('head/')) headArrays[k.slice(5)] = v;
    head.setState({ arrays: headArrays, json: ckpt.json.head as Record<string, unknown> });
    const ps = ckpt.json.pipeline as PipelineState;
    if (sameImages) pipeline.setState(ps);
    else pipeline.restartAt(ps.sampler.epoch, ps.step);
    const dropout = Array.isArray(ckpt.json.dropout) ? (ckpt.json.dropout as RankRandomState[]) : [];
    if (dropout[0]?.fq) fq.setRandomState?.(dropout[0].fq);
    if (dropout[0]?.fk && fk) fk.setRandomState?.(dropout[0].fk);
    this.last = where;
    // resumed into another output folder: that folder still needs a checkpoint of this step
    this.lastStep = path.resolve(path.dirname(where)) === path.resolve(this.root) ? ckpt.step : -1;
    const rows = ckpt.json.batchNormRows;
    return { step: ckpt.step, replicaRandomStates: dropout.slice(1), batchNormRows: Array.isArray(rows) ? (rows as number[]) : null };
  }

  /** A sharded head's optimizer slots (FC's momentum), whole, by index into the optimizer's buffers: on rank 0 (elsewhere empty). A collective. */
  private gatherHeadSlots(): Map<number, Float32Array> {
    const { sgd, head } = this.state;
    const buffers = sgd.momentumBuffers();
    const first = buffers.length - head.trainableVariables().length;
    const out = new Map<number, Float32Array>();
    for (let i = first; i < buffers.length; i++) {
      const whole = head.sharding!.gatherTrainable(i - first, buffers[i].dataSync() as Float32Array);
      if (whole) out.set(i, whole);
    }
    return out;
  }
}

/** Variables of a backbone as checkpoint arrays, keyed `${prefix}/${name}`. */
function dumpVariables(prefix: string, net: Backbone, into: Record<string, ArrayEntry>): void {
  for (const v of net.variables()) into[`${prefix}/${v.name}`] = v.variable.dataSync().slice() as Float32Array;
}

function restoreVariables(prefix: string, net: Backbone, from: Record<string, ArrayEntry>, where: string): void {
  for (const v of net.variables()) {
    const arr = from[`${prefix}/${v.name}`];
    if (!arr || arr.length !== v.variable.size)
      throw new AttfcError(`${where}: ${prefix}/${v.name} is missing or has ${arr?.length ?? 0} values, expected ${v.variable.size} (was the checkpoint made with another backbone or size?)`);
    v.variable.assign(tf.tensor(arr, v.variable.shape, v.variable.dtype));
  }
}
