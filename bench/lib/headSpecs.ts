// Head configurations of bench:heads, named as on the command line:
//   fc            full FC (W and momentum on the WASM heap)
//   pfc<r>        Partial FC with sample rate r in (0, 1], e.g. pfc0.1
//   attfc<r>      AttFC with DCC size floor(r*N/B)*B, e.g. attfc0.3 ("attfc" alone means 0.3)
//   attfc<S>      AttFC with a fixed DCC of S slots (a whole number >= 1, a multiple of B), e.g. attfc65536
import { estimateFullFcHeap } from '../../src/heads/fullFc.js';
import { estimatePartialFcHeap, partialFcSampleSize } from '../../src/heads/partialFc.js';
import { defaultQueueSize, DEFAULT_DEVICE_BUDGET_BYTES } from '../../src/heads/attfc/index.js';
import { WASM_HEAP_MAX_BYTES } from '../../src/engine/index.js';

export type HeadSpec =
  | { id: string; kind: 'fc' }
  | { id: string; kind: 'pfc'; sampleRate: number }
  | { id: string; kind: 'attfc'; queueRatio: number; queueSize?: undefined }
  | { id: string; kind: 'attfc'; queueSize: number; queueRatio?: undefined };

/** The heads measured by default, in display order. */
export const DEFAULT_HEADS = ['fc', 'pfc0.1', 'pfc0.3', 'attfc0.3', 'attfc65536'];

/** Parses one head name (see the file comment); throws naming the accepted forms. */
export function parseHeadSpec(name: string): HeadSpec {
  const id = name.trim();
  if (id === 'fc') return { id, kind: 'fc' };
  if (id === 'attfc') return { id: 'attfc0.3', kind: 'attfc', queueRatio: 0.3 };
  const m = /^(pfc|attfc)(\d+(?:\.\d+)?)$/.exec(id);
  if (m) {
    const v = Number(m[2]);
    if (m[1] === 'pfc' && v > 0 && v <= 1) return { id, kind: 'pfc', sampleRate: v };
    if (m[1] === 'attfc' && v > 0 && v < 1) return { id, kind: 'attfc', queueRatio: v };
    if (m[1] === 'attfc' && Number.isInteger(v) && v >= 1) return { id, kind: 'attfc', queueSize: v };
  }
  throw new Error(`--heads: unknown head "${name}"; expected fc, pfc<rate in (0,1]>, attfc<ratio in (0,1)> or attfc<slots>, e.g. fc,pfc0.1,attfc0.3,attfc65536`);
}

/** DCC size S of an AttFC spec at N classes (0 when the ratio gives less than one batch). */
export function queueSizeOf(spec: HeadSpec & { kind: 'attfc' }, numClasses: number, batchSize: number): number {
  return spec.queueSize ?? defaultQueueSize(numClasses, batchSize, spec.queueRatio);
}

/** Human description of the spec at N, e.g. "Partial FC r=0.1 (205,991 centres/step)". */
export function describeSpec(spec: HeadSpec, numClasses: number, batchSize: number): string {
  if (spec.kind === 'fc') return 'full FC';
  if (spec.kind === 'pfc') return `Partial FC r=${spec.sampleRate} (${Math.max(batchSize, Math.round(spec.sampleRate * numClasses)).toLocaleString('en-US')} centres/step)`;
  const S = queueSizeOf(spec, numClasses, batchSize);
  return `AttFC S=${S.toLocaleString('en-US')}${spec.queueSize === undefined ? ` (${spec.queueRatio * 100}% of N)` : ' (fixed)'}`;
}

/** Legend text independent of N, e.g. "attfc0.3: AttFC, DCC 30% of N". */
export function legendLabel(spec: HeadSpec): string {
  if (spec.kind === 'fc') return `${spec.id}: full FC (W + momentum on the WASM heap)`;
  if (spec.kind === 'pfc') return `${spec.id}: Partial FC, sample rate ${spec.sampleRate} (W + momentum in JS)`;
  if (spec.queueSize === undefined) return `${spec.id}: AttFC, DCC ${+(spec.queueRatio * 100).toFixed(1)}% of N, K=3`;
  return `${spec.id}: AttFC, fixed DCC of ${spec.queueSize.toLocaleString('en-US')}, K=3`;
}

const GiB = 2 ** 30;
/** Node, tfjs and the wasm module before any head exists. */
const BASELINE_RSS = 0.5 * GiB;

/**
 * A generous upper bound of the process memory one configuration needs (JS tables + WASM heap +
 * baseline), so the parent can refuse to start a child the machine cannot hold instead of waking the
 * OOM killer among other people's processes.
 */
export function estimateRunBytes(spec: HeadSpec, numClasses: number, batchSize: number, dim: number, deviceBudgetBytes = DEFAULT_DEVICE_BUDGET_BYTES): number {
  const heapCap = (b: number) => Math.min(b, WASM_HEAP_MAX_BYTES);
  if (spec.kind === 'fc') {
    const heap = estimateFullFcHeap(numClasses, dim, batchSize).total;
    // past the heap limit the head refuses before allocating anything
    if (heap > WASM_HEAP_MAX_BYTES) return BASELINE_RSS;
    return BASELINE_RSS + heap + numClasses * dim * 4; // + the JS init array
  }
  if (spec.kind === 'pfc') {
    const k = partialFcSampleSize(numClasses, spec.sampleRate, batchSize);
    const heap = estimatePartialFcHeap(k, dim, batchSize);
    // past the heap limit the head refuses before allocating its tables
    if (heap > 0.95 * WASM_HEAP_MAX_BYTES) return BASELINE_RSS;
    const tables = 2 * numClasses * dim * 4 + numClasses;
    const perStepJs = 2 * k * dim * 4; // gathered rows + downloaded gradient
    return BASELINE_RSS + tables + perStepJs + heapCap(heap);
  }
  const S = queueSizeOf(spec, numClasses, batchSize);
  const dcc = 2 * S * dim * 4 + 3 * S * 4;
  return BASELINE_RSS + dcc + heapCap(Math.min(deviceBudgetBytes, 2 * S * dim * 4) + 64 * 2 ** 20);
}
