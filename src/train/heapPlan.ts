// Heap planning: before training, estimate the WASM heap the configuration needs (backbone, key forward,
// head), log it, and refuse a configuration that cannot fit with the largest batch that would. Returns
// the byte budget AttFC may keep on the device. Other backends have no fixed heap and skip the check.
import type { Backbone } from '../backbones/index.js';
import { formatBytes } from '../engine/index.js';
import { DEFAULT_DEVICE_BUDGET_BYTES } from '../heads/attfc/index.js';
import { AttfcError } from '../errors.js';
import { estimateTrainingHeap, describeHeapEstimate, largestFittingRows } from './memoryEstimate.js';
import { headHeapBeforeBackbone, sizeAttFcDeviceBudget, type HeadSizing } from './headFactory.js';
import { backboneOptions, type RunPlan } from './runPlan.js';

export async function planHeap(plan: RunPlan, sizing: HeadSizing, fq: Backbone, log: (line: string) => void): Promise<number> {
  if (plan.engine.backend !== 'wasm') return DEFAULT_DEVICE_BUDGET_BYTES;
  const c = plan.config;
  const { replicas, localBatch } = plan;
  let est = await estimateTrainingHeap({
    backbone: c.backbone,
    backboneOptions: backboneOptions(c),
    paramCount: fq.paramCount(),
    batchSize: localBatch,
    keyImages: plan.keysPerSample * localBatch,
    headBytes: headHeapBeforeBackbone(c, sizing),
  });
  let deviceBudget = DEFAULT_DEVICE_BUDGET_BYTES;
  if (c.head === 'attfc') ({ deviceBudget, estimate: est } = sizeAttFcDeviceBudget(c, sizing, est));
  log(`attfc: estimated WASM heap: ${describeHeapEstimate(est)}`);
  if (est.total <= est.limit * 0.95) return deviceBudget;
  // AttFC's device budget is optional; only its per-step temporaries must fit
  const rows = largestFittingRows(est, sizing.requiredBytes);
  const minRows = replicas > 1 ? 2 : 1;
  const fits =
    rows >= minRows
      ? `the largest batch that fits is about ${rows * replicas}${replicas > 1 ? ` (${rows} rows on each of ${replicas} replicas)` : ''}`
      : 'no batch fits at this input size and width';
  throw new AttfcError(
    `this configuration needs about ${formatBytes(est.total)} of WASM heap but at most ${formatBytes(est.limit)} exists ` +
      `(${describeHeapEstimate(est)}); ${fits}: reduce --batch-size (now ${c.batchSize}${replicas > 1 ? `, ${localBatch} rows on this replica` : ''}), --input-size (${c.inputSize}) or --width, ` +
      `or use a smaller backbone`,
  );
}
