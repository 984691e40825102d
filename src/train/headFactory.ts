// Head factory: sizes and builds the classification head a configuration names: full FC, Partial FC, or
// AttFC with its class encoder f_k (an EMA copy of f_q), its DCC queue and its on-device chunk budget;
// whole on every rank, or split across the ranks of a distributed run (--shard-head).
import { createBackbone, type Backbone } from '../backbones/index.js';
import { FullFcHead, estimateFullFcHeap } from '../heads/fullFc.js';
import { PartialFcHead, estimatePartialFcHeap, partialFcSampleSize } from '../heads/partialFc.js';
import { AttFcHead, ClassEncoder, defaultQueueSize, estimateDeviceBytes, DEFAULT_CHUNK_SLOTS } from '../heads/attfc/index.js';
import type { Head } from '../heads/types.js';
import type { HeadCollectives } from '../heads/collectives.js';
import { AttfcError } from '../errors.js';
import { marginOptions, type TrainConfig } from './config.js';
import type { HeapEstimate } from './memoryEstimate.js';
import { backboneOptions } from './runPlan.js';
import { shardRange } from '../heads/sharded/shardMath.js';

/** This rank's place when --shard-head splits the head across the ranks of a distributed run. */
export interface HeadSplit {
  rank: number;
  worldSize: number;
}

/** The split of the head a configuration asks for on this rank (null: the head is whole). */
export function headSplit(c: TrainConfig, run: { rank: number; worldSize: number } | null): HeadSplit | null {
  return c.shardHead && run && run.worldSize > 1 ? { rank: run.rank, worldSize: run.worldSize } : null;
}

/** Rows of a table of `total` this rank holds (all of them for a whole head). */
export function ownRows(total: number, split: HeadSplit | null): number {
  if (!split) return total;
  const [start, end] = shardRange(total, split.rank, split.worldSize);
  return end - start;
}

export interface HeadSizing {
  /** AttFC's DCC slots (0 for the other heads). */
  queueSize: number;
  /** WASM heap the head must have: FC/PFC weights and temporaries; AttFC's per-step temporaries. */
  requiredBytes: number;
}

/**
 * Sizes the head before any backbone is built, so its errors (queue size) come cheap. A split head
 * counts this rank's classes or DCC slots (a Partial FC shard samples its share of the classes, on average).
 */
export function sizeHead(c: TrainConfig, numClasses: number, split: HeadSplit | null = null): HeadSizing {
  if (c.head === 'fc') return { queueSize: 0, requiredBytes: estimateFullFcHeap(ownRows(numClasses, split), c.embeddingSize, c.batchSize).total };
  if (c.head === 'pfc') {
    const sampled = partialFcSampleSize(numClasses, c.sampleRate, c.batchSize);
    return { queueSize: 0, requiredBytes: estimatePartialFcHeap(Math.ceil((sampled * ownRows(numClasses, split)) / numClasses), c.embeddingSize, c.batchSize) };
  }
  const queueSize = c.queueSize ?? defaultQueueSize(numClasses, c.batchSize, c.queueRatio);
  if (queueSize <= 0) throw new AttfcError(`queueRatio ${c.queueRatio} of ${numClasses} identities is less than one batch (${c.batchSize}); raise queueRatio or set queueSize`);
  return { queueSize, requiredBytes: estimateDeviceBytes(ownRows(queueSize, split), c.embeddingSize, c.batchSize, DEFAULT_CHUNK_SLOTS, 0) };
}

/** The heap the head takes before the backbone's share is known (AttFC: nothing, it is sized from what is left). */
export function headHeapBeforeBackbone(c: TrainConfig, sizing: HeadSizing): number {
  return c.head === 'attfc' ? 0 : sizing.requiredBytes;
}

/**
 * AttFC's DCC chunks may keep what the backbone leaves of 85% of the heap on the device: every chunk
 * kept (and kept packed) saves an upload (and XNNPACK's packing) per step. Returns that budget and the
 * estimate with the head's share added.
 */
export function sizeAttFcDeviceBudget(c: TrainConfig, sizing: HeadSizing, est: HeapEstimate): { deviceBudget: number; estimate: HeapEstimate } {
  const deviceBudget = Math.max(0, 0.85 * est.limit - est.total - sizing.requiredBytes);
  const head = estimateDeviceBytes(sizing.queueSize, c.embeddingSize, c.batchSize, DEFAULT_CHUNK_SLOTS, deviceBudget);
  return { deviceBudget, estimate: { ...est, head, total: est.total + head } };
}

export interface BuiltHead {
  head: Head;
  /** AttFC's class encoder network and its EMA updater; null for FC and PFC. */
  fk: Backbone | null;
  encoder: ClassEncoder | null;
}

/**
 * `collectives`: this process is one rank of a distributed run (the head sees its rows of each batch;
 * with --shard-head it holds only this rank's shard).
 */
export function createHead(c: TrainConfig, numClasses: number, sizing: HeadSizing, fq: Backbone, deviceBudgetBytes: number, collectives?: HeadCollectives): BuiltHead {
  const margin = marginOptions(c);
  const shared = collectives ? { collectives, shard: c.shardHead } : {};
  if (c.head === 'fc') return { head: new FullFcHead({ numClasses, embeddingSize: c.embeddingSize, margin, seed: c.seed + 1, batchSize: c.batchSize, ...shared }), fk: null, encoder: null };
  if (c.head === 'pfc')
    return { head: new PartialFcHead({ numClasses, embeddingSize: c.embeddingSize, sampleRate: c.sampleRate, margin, seed: c.seed + 1, batchSize: c.batchSize, ...shared }), fk: null, encoder: null };
  const fk = createBackbone(c.backbone, backboneOptions(c));
  const encoder = new ClassEncoder(fq, fk, c.emaMomentum);
  const head = new AttFcHead({
    numClasses,
    embeddingSize: c.embeddingSize,
    batchSize: c.batchSize,
    sampleNum: c.sampleNum,
    queueSize: sizing.queueSize,
    attention: c.attention,
    temperature: c.temperature,
    masking: c.masking,
    deviceBudgetBytes,
    margin,
    seed: c.seed + 1,
    ...shared,
  });
  return { head, fk, encoder };
}
