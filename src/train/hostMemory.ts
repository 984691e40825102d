// Memory outside the WASM heap: what the head and the data index keep in JavaScript typed arrays
// (AttFC's DCC in two layouts, Partial FC's W and momentum), what a native backend (torch) holds for the
// head instead (its tables, the step's temporaries, and the JS copies a checkpoint makes of them), and
// the size of the backbone itself (for a head split across the ranks by --shard-head: this rank's shard,
// and on rank 0 the whole head it assembles to write each checkpoint). A configuration that cannot fit
// is refused before anything large is allocated, with the numbers, the way the heap plan refuses a
// batch (a table that does not fit grows the process until the kernel's OOM killer ends it, with no
// message).
import os from 'node:os';
import { backboneParamCount } from '../backbones/index.js';
import { WASM_HEAP_MAX_BYTES, formatBytes } from '../engine/index.js';
import { AttfcError } from '../errors.js';
import type { TrainConfig } from './config.js';
import { estimateFullFcHeap } from '../heads/fullFc.js';
import { estimatePartialFcHeap, partialFcSampleSize } from '../heads/partialFc.js';
import { backboneOptions } from './runPlan.js';
import { ownRows, type HeadSplit } from './headFactory.js';

export interface HostPart {
  what: string;
  bytes: number;
  /** Flags that shrink it, for the message. */
  flags: string;
}

/** Bytes per image of a data set's index in memory (keys and offsets f64, labels, order, quality, flag). */
const INDEX_BYTES_PER_IMAGE = 29;
/** Bytes per DCC slot beyond its centre: label and the label index's two links (Int32 each). */
const DCC_SLOT_BYTES = 12;

/** Bytes per image the sampler keeps for a data set without an index (the on-demand synthetic source): its permutation and seen flag. */
const SAMPLER_BYTES_PER_IMAGE = 5;

/**
 * The large allocations of a run outside the WASM heap: the head's tables (queueSize: AttFC's DCC
 * slots) in JS or, on a native backend, in its memory, with the JS copies a checkpoint makes of them;
 * on a native backend also the head's step temporaries (on WASM they live on the heap, planned there);
 * and the data set's index (or, for the on-demand synthetic source, only the sampler's order).
 */
export function hostParts(
  c: TrainConfig,
  numClasses: number,
  numImages: number,
  queueSize: number,
  backend = 'wasm',
  synthetic = false,
  split: HeadSplit | null = null,
): HostPart[] {
  const D = c.embeddingSize;
  const native = backend !== 'wasm' && backend !== 'cpu';
  const parts: HostPart[] = [];
  const shardOf = (rows: number, what: string) => (split ? `this rank's ${ownRows(rows, split)} of ${rows} ${what}` : `${rows} ${what}`);
  /** Rank 0 of a split head assembles the whole head (bytesPerRow x rows) to write each checkpoint. */
  const wholeOnRank0 = (rows: number, bytesPerRow: number, what: string, flags: string) => {
    if (split?.rank === 0) parts.push({ what: `${what} assembled whole on rank 0 for each checkpoint ${formatBytes(rows * bytesPerRow)}`, bytes: rows * bytesPerRow, flags });
  };
  if (c.head === 'attfc') {
    const slots = ownRows(queueSize, split);
    const flags = `--queue-size (now ${queueSize})${c.queueSize === undefined ? ` or --queue-ratio (now ${c.queueRatio})` : ''}, or --embedding-size (now ${D})`;
    parts.push({
      what: `AttFC DCC: ${shardOf(queueSize, 'slots')} x ${D} floats, ${native ? `in ${backend} memory and its checkpoint copy` : 'two layouts'} ${formatBytes(slots * (8 * D + DCC_SLOT_BYTES))}`,
      bytes: slots * (8 * D + DCC_SLOT_BYTES),
      flags,
    });
    wholeOnRank0(queueSize, 4 * D + 4, 'the DCC', flags);
  }
  if (c.head === 'pfc') {
    const rows = ownRows(numClasses, split);
    const tables = (native ? 16 : 8) * rows * D;
    parts.push({
      what: `Partial FC W and momentum: ${shardOf(numClasses, 'classes')} x ${D} floats x 2${native ? ` in ${backend} memory and their checkpoint copies` : ''} ${formatBytes(tables)}`,
      bytes: tables,
      flags: `--embedding-size (now ${D})`,
    });
    wholeOnRank0(numClasses, 8 * D, 'Partial FC W and momentum', `--embedding-size (now ${D})`);
    if (native) {
      const k = Math.ceil((partialFcSampleSize(numClasses, c.sampleRate, c.batchSize) * rows) / numClasses);
      const step = estimatePartialFcHeap(k, D, c.batchSize);
      parts.push({ what: `the Partial FC step's ${k} sampled centres, their copies, gradients and logits ${formatBytes(step)}`, bytes: step, flags: `--sample-rate (now ${c.sampleRate})` });
    }
  }
  if (c.head === 'fc') {
    const rows = ownRows(numClasses, split);
    const flags = `--embedding-size (now ${D}), or --head pfc/attfc`;
    parts.push({ what: `full FC W and momentum copied for each checkpoint: ${shardOf(numClasses, 'classes')} x ${D} floats x 2 ${formatBytes(8 * rows * D)}`, bytes: 8 * rows * D, flags });
    wholeOnRank0(numClasses, 8 * D, 'full FC W and momentum', flags);
    if (native) parts.push({ ...fullFcNativeStep(rows, D, c.batchSize, backend), flags });
  }
  const perImage = synthetic ? SAMPLER_BYTES_PER_IMAGE : INDEX_BYTES_PER_IMAGE;
  parts.push({ what: `${synthetic ? 'sampler order of' : 'data set index:'} ${numImages} images ${formatBytes(numImages * perImage)}`, bytes: numImages * perImage, flags: '' });
  return parts;
}

/**
 * Full FC's step on a native backend: the WASM estimate without XNNPACK's packed copy (measured on
 * torch, a step's peak grows by about 14 tables of N x D: W, momentum, normalised W, gradients,
 * temporaries).
 */
export function fullFcNativeStep(numClasses: number, dim: number, batchSize: number, backend: string): Omit<HostPart, 'flags'> {
  const e = estimateFullFcHeap(numClasses, dim, batchSize);
  const bytes = e.total - e.packed;
  return { what: `the full FC step in ${backend} memory: W, momentum, normalised W, gradients, temporaries and [${batchSize} x ${numClasses}] logits ${formatBytes(bytes)}`, bytes };
}

/** Memory this process may still take: the free memory, or less under a cgroup limit. */
export function availableMemory(): number {
  let available = os.freemem();
  const limit = (process as { constrainedMemory?: () => number | undefined }).constrainedMemory?.();
  if (limit && limit > 0 && limit < 2 ** 60) available = Math.min(available, limit - process.memoryUsage.rss());
  return Math.max(0, available);
}

/** Refuses `parts` if together they need more than 90% of `available` bytes, naming the flags that shrink them, largest part first. */
export function checkHostMemory(parts: HostPart[], available = availableMemory()): void {
  const total = parts.reduce((a, p) => a + p.bytes, 0);
  if (total <= 0.9 * available) return;
  const flags = [...new Set([...parts].sort((a, b) => b.bytes - a.bytes).filter((p) => p.flags).map((p) => p.flags))];
  throw new AttfcError(
    `this configuration needs about ${formatBytes(total)} of memory outside the WASM heap (${parts.map((p) => p.what).join('; ')}) ` +
      `but ${formatBytes(available)} is available${flags.length ? `: reduce ${flags.join(', or ')}` : ''}`,
  );
}

/**
 * Refuses a backbone whose weights alone cannot fit (on WASM: one copy in the 4 GiB heap; elsewhere:
 * weights, gradients and momentum in the free memory), from the architecture alone, before a single
 * weight is allocated: an absurd --embedding-size or --width would otherwise fail deep inside with a
 * RangeError.
 */
export function checkBackboneSize(c: TrainConfig, backend: string, available = availableMemory()): void {
  const limit = backend === 'wasm' ? WASM_HEAP_MAX_BYTES : available / 3;
  const options = backboneOptions(c);
  const weightBytes = (o: typeof options) => 4 * backboneParamCount(c.backbone, o);
  const bytes = weightBytes(options);
  if (bytes <= limit) return;
  // name what makes it too large: the embedding size if the default one fits, else the width
  const fitsWith = (o: Partial<typeof options>) => weightBytes({ ...options, ...o }) <= limit;
  const culprit = fitsWith({ embeddingSize: 512 })
    ? `--embedding-size ${c.embeddingSize}`
    : fitsWith({ embeddingSize: 512, widthMultiplier: 1 })
      ? `--width ${c.widthMultiplier}`
      : `--backbone ${c.backbone} --input-size ${c.inputSize}`;
  const where = backend === 'wasm' ? `more than the ${formatBytes(WASM_HEAP_MAX_BYTES)} WASM heap holds` : `more than a third of the ${formatBytes(available)} available`;
  throw new AttfcError(`${culprit}: the ${c.backbone} backbone would have ${(bytes / 4 / 1e9).toFixed(2)} G parameters (${formatBytes(bytes)} of weights), ${where}`);
}
