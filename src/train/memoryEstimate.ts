// Estimates the WASM heap a training step needs before training starts, so a configuration that cannot
// fit is refused with numbers instead of failing (or worse) mid-run.
import * as tf from '@tensorflow/tfjs-core';
import { createBackbone, type BackboneOptions } from '../backbones/index.js';
import { WASM_HEAP_MAX_BYTES, formatBytes } from '../engine/index.js';

export interface HeapEstimate {
  /** Parameters, their momentum, gradients and XNNPACK's packed weight copies. */
  parameters: number;
  /** Activations kept for backward by the query forward at the configured batch size. */
  activations: number;
  /** Class-encoder forward of the (K-1)*B key images (no tape; the largest live set). */
  keyForward: number;
  /** The head's heap share (its own estimate). */
  head: number;
  total: number;
  limit: number;
  /** Heap bytes as a function of the rows per replica, to find the largest batch that fits. */
  scaling: { queryFixed: number; queryPerRow: number; keyFixed: number; keyPerRow: number };
}

/** Peak tensor bytes of a forward (+ backward) on a throwaway copy of the backbone at batches 1 and 2. */
async function perImageBytes(name: string, opts: BackboneOptions, withTape: boolean): Promise<{ fixed: number; perImage: number }> {
  const net = createBackbone(name, opts);
  const size = opts.inputSize ?? 112;
  const peak = async (b: number) => {
    const x = tf.zeros([b, size, size, 3]) as tf.Tensor4D;
    const info = await tf.profile(() => {
      if (withTape) {
        const { value, grads } = tf.variableGrads(() => tf.sum(net.apply(x, true)) as tf.Scalar, net.trainableVariables());
        tf.dispose([value, ...Object.values(grads)]);
      } else {
        tf.tidy(() => {
          net.apply(x, true);
        });
      }
    });
    x.dispose();
    return info.peakBytes;
  };
  const p1 = await peak(1);
  const p2 = await peak(2);
  net.dispose();
  return { fixed: Math.max(0, 2 * p1 - p2), perImage: Math.max(0, p2 - p1) };
}

const HEAP_OVERHEAD = 1.5;

export async function estimateTrainingHeap(a: {
  backbone: string;
  backboneOptions: BackboneOptions;
  paramCount: number;
  batchSize: number;
  keyImages: number;
  headBytes: number;
}): Promise<HeapEstimate> {
  const q = await perImageBytes(a.backbone, a.backboneOptions, true);
  const k = a.keyImages > 0 ? await perImageBytes(a.backbone, a.backboneOptions, false) : { fixed: 0, perImage: 0 };
  // weights + momentum + gradient + packed copy; a second backbone (f_k) for AttFC adds weights + packed.
  const parameters = a.paramCount * 4 * (4 + (a.keyImages > 0 ? 2 : 0));
  // tf.profile counts live tensor bytes only; the heap also holds allocator fragmentation and XNNPACK's
  // buffers. bench:train measured peaks about 1.5x the tensor count (MobileFaceNet 112x112, batch 16:
  // 3.1 GiB against 2.1 GiB predicted), so activations are scaled by that.
  const activations = HEAP_OVERHEAD * (q.fixed + q.perImage * a.batchSize);
  const keyForward = HEAP_OVERHEAD * (k.fixed + k.perImage * a.keyImages);
  // The key forward runs before the query forward and is freed, so the peak is the larger of the two.
  const total = parameters + Math.max(activations, keyForward) + a.headBytes;
  const keysPerRow = a.batchSize > 0 ? a.keyImages / a.batchSize : 0;
  const scaling = {
    queryFixed: HEAP_OVERHEAD * q.fixed,
    queryPerRow: HEAP_OVERHEAD * q.perImage,
    keyFixed: HEAP_OVERHEAD * k.fixed,
    keyPerRow: HEAP_OVERHEAD * k.perImage * keysPerRow,
  };
  return { parameters, activations, keyForward, head: a.headBytes, total, limit: WASM_HEAP_MAX_BYTES, scaling };
}

/**
 * The most rows per replica whose estimate stays within `share` of the heap, keeping the parameters and
 * `headBytes` as they are (the head shrinks with the batch, so this errs on the small side); 0 if none.
 */
export function largestFittingRows(e: HeapEstimate, headBytes: number, share = 0.95): number {
  const room = share * e.limit - e.parameters - headBytes;
  const { queryFixed, queryPerRow, keyFixed, keyPerRow } = e.scaling;
  let rows = Infinity;
  if (queryPerRow > 0) rows = Math.min(rows, (room - queryFixed) / queryPerRow);
  if (keyPerRow > 0) rows = Math.min(rows, (room - keyFixed) / keyPerRow);
  return Number.isFinite(rows) ? Math.max(0, Math.floor(rows)) : 0;
}

export function describeHeapEstimate(e: HeapEstimate): string {
  return (
    `parameters+optimizer ${formatBytes(e.parameters)}, activations ${formatBytes(e.activations)}, ` +
    `key forward ${formatBytes(e.keyForward)}, head ${formatBytes(e.head)}; total ${formatBytes(e.total)} of ${formatBytes(e.limit)}`
  );
}
