// UnsortedSegmentSum (missing on wasm; it is the gradient of tf.gather): ScatterNd accumulates duplicate
// indices, which is exactly a segment sum.
import { type KernelArgs, type Info, run, free, reshape } from './util.js';

export function unsortedSegmentSum({ inputs, backend: b, attrs }: KernelArgs): Info {
  const { x, segmentIds } = inputs;
  const numSegments = attrs.numSegments as number;
  const k = segmentIds.shape.length;
  const lead = segmentIds.shape.reduce((p, q) => p * q, 1);
  const rest = x.shape.slice(k);
  const idx = reshape(b, segmentIds, [lead, 1]);
  const upd = reshape(b, x, [lead, ...rest]);
  const out = run(b, 'ScatterNd', { indices: idx, updates: upd }, { shape: [numSegments, ...rest] });
  free(b, idx, upd);
  return out;
}
