// Layout kernels: reshape, transpose, slicing, concatenation, padding, tiling, gathers and scatters,
// and the constant makers (fill, range, one-hot). Views are kept where ATen gives them (reshape,
// transpose, split); a slice that is smaller than its input is copied so it does not pin the input.
import * as tf from '@tensorflow/tfjs-core';
import type { TorchBackend } from '../backend.js';
import type { Scope } from '../aten.js';
import type { KernelTable, TorchKernelArgs } from './types.js';

function listInputs(inputs: Record<string, tf.TensorInfo>): tf.TensorInfo[] {
  return Object.keys(inputs)
    .sort((a, b) => Number(a) - Number(b))
    .map((k) => inputs[k] as tf.TensorInfo);
}

function reshape({ inputs, backend, attrs }: TorchKernelArgs): tf.TensorInfo {
  const x = inputs.x;
  const size = tf.util.sizeFromShape(x.shape);
  const shape = tf.util.inferFromImplicitShape(attrs.shape as number[], size);
  if (tf.util.sizeFromShape(shape) !== size) throw new Error(`Reshape: cannot reshape [${x.shape}] (${size} values) to [${shape}]`);
  return backend.output(backend.aten.t('reshape', backend.handle(x), shape), x.dtype);
}

function identity({ inputs, backend }: TorchKernelArgs): tf.TensorInfo {
  return backend.output(backend.aten.t('alias', backend.handle(inputs.x)), inputs.x.dtype);
}

function transpose({ inputs, backend, attrs }: TorchKernelArgs): tf.TensorInfo {
  return backend.output(backend.aten.t('permute', backend.handle(inputs.x), attrs.perm), inputs.x.dtype);
}

/** A contiguous copy when `h` views less than all of its storage (so a small slice frees a large input). */
function compactCopy(s: Scope, h: number, viewed: number, whole: number): number {
  return viewed < whole ? s.op('clone', h, 'contiguous') : h;
}

function slice({ inputs, backend, attrs }: TorchKernelArgs): tf.TensorInfo {
  const x = inputs.x;
  const [begin, size] = tf.slice_util.parseSliceParams(x, attrs.begin as number[], attrs.size as number[]);
  return backend.scoped((s) => {
    let h = backend.handle(x);
    for (let d = 0; d < x.shape.length; d++)
      if (begin[d] !== 0 || size[d] !== x.shape[d]) h = s.op('slice.Tensor', h, d, begin[d], begin[d] + size[d], 1);
    const out = compactCopy(s, h, tf.util.sizeFromShape(size), tf.util.sizeFromShape(x.shape));
    return backend.output(backend.aten.t('alias', out), x.dtype);
  });
}

function stridedSlice({ inputs, backend, attrs }: TorchKernelArgs): tf.TensorInfo {
  const x = inputs.x;
  const a = attrs as Record<string, number & number[]>;
  const info = tf.slice_util.sliceInfo(x.shape, a.begin, a.end, a.strides, a.beginMask, a.endMask, a.ellipsisMask, a.newAxisMask, a.shrinkAxisMask);
  return backend.scoped((s) => {
    let h = backend.handle(x);
    // per input axis, before shrinking and new axes (which the final reshape applies)
    const sizes = tf.slice_util.computeOutShape(info.begin, info.end, info.strides).map((n) => Math.max(0, n));
    for (let d = 0; d < x.shape.length; d++) {
      const start = info.begin[d];
      const stride = info.strides[d];
      const n = sizes[d];
      if (start === 0 && stride === 1 && n === x.shape[d]) continue;
      if (stride > 0) h = s.op('slice.Tensor', h, d, start, start + (n - 1) * stride + 1, stride);
      else {
        const idx = s.op('arange.start_step', start, start + n * stride, stride, 'int64', null, backend.device);
        h = s.op('index_select', h, d, idx);
      }
    }
    const shaped = s.op('reshape', h, info.finalShape);
    const out = compactCopy(s, shaped, tf.util.sizeFromShape(info.finalShape), tf.util.sizeFromShape(x.shape));
    return backend.output(backend.aten.t('alias', out), x.dtype);
  });
}

function concat({ inputs, backend, attrs }: TorchKernelArgs): tf.TensorInfo {
  const list = listInputs(inputs);
  const axis = tf.util.parseAxisParam(attrs.axis as number, list[0].shape)[0];
  const outShape = tf.backend_util.computeOutShape(list.map((t) => t.shape), axis);
  const nonEmpty = list.filter((t) => tf.util.sizeFromShape(t.shape) > 0);
  const dtype = list.map((t) => t.dtype).reduce((p, q) => tf.upcastType(p, q));
  if (nonEmpty.length === 0) return backend.output(backend.aten.t('zeros', outShape, dtype, null, backend.device), dtype);
  return backend.output(backend.aten.t('cat', nonEmpty.map((t) => backend.handle(t)), axis), dtype);
}

function pack({ inputs, backend, attrs }: TorchKernelArgs): tf.TensorInfo {
  const list = listInputs(inputs);
  const rank = list[0].shape.length;
  const axis = (attrs.axis as number) < 0 ? (attrs.axis as number) + rank + 1 : (attrs.axis as number);
  return backend.output(backend.aten.t('stack', list.map((t) => backend.handle(t)), axis), list[0].dtype);
}

function unpack({ inputs, backend, attrs }: TorchKernelArgs): tf.TensorInfo[] {
  const x = inputs.value;
  const axis = tf.util.parseAxisParam(attrs.axis as number, x.shape)[0];
  return backend.aten.ts('unbind.int', backend.handle(x), axis).map((h) => backend.output(h, x.dtype));
}

function splitV({ inputs, backend, attrs }: TorchKernelArgs): tf.TensorInfo[] {
  const x = inputs.x;
  const axis = tf.util.parseAxisParam(attrs.axis as number, x.shape)[0];
  const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, attrs.numOrSizeSplits as number | number[], axis);
  return backend.aten.ts('split_with_sizes', backend.handle(x), sizes, axis).map((h) => backend.output(h, x.dtype));
}

function reverse({ inputs, backend, attrs }: TorchKernelArgs): tf.TensorInfo {
  const x = inputs.x;
  const dims = tf.util.parseAxisParam(attrs.dims as number | number[], x.shape);
  if (dims.length === 0) return backend.output(backend.aten.t('clone', backend.handle(x)), x.dtype);
  return backend.output(backend.aten.t('flip', backend.handle(x), dims), x.dtype);
}

function padV2({ inputs, backend, attrs }: TorchKernelArgs): tf.TensorInfo {
  const x = inputs.x;
  const paddings = attrs.paddings as [number, number][];
  const pad: number[] = [];
  for (let d = paddings.length - 1; d >= 0; d--) pad.push(paddings[d][0], paddings[d][1]); // ATen: last axis first
  return backend.output(backend.aten.t('constant_pad_nd', backend.handle(x), pad, (attrs.constantValue as number) ?? 0), x.dtype);
}

function tile({ inputs, backend, attrs }: TorchKernelArgs): tf.TensorInfo {
  return backend.output(backend.aten.t('repeat', backend.handle(inputs.x), attrs.reps), inputs.x.dtype);
}

/** int32 indices as the int64 ATen's indexing ops take. */
function longIndex(s: Scope, backend: TorchBackend, t: tf.TensorInfo): number {
  return s.op('to.dtype', backend.handle(t), 'int64');
}

function gatherV2({ inputs, backend, attrs }: TorchKernelArgs): tf.TensorInfo {
  const { x, indices } = inputs;
  const axis = tf.util.parseAxisParam(attrs.axis as number, x.shape)[0];
  if (((attrs.batchDims as number) ?? 0) !== 0) throw new Error('attfc: kernel GatherV2 with batchDims > 0 is not implemented on backend torch');
  const outShape = [...x.shape.slice(0, axis), ...indices.shape, ...x.shape.slice(axis + 1)];
  return backend.scoped((s) => {
    const idx = s.op('reshape', longIndex(s, backend, indices), [-1]);
    return backend.output(backend.aten.t('reshape', s.op('index_select', backend.handle(x), axis, idx), outShape), x.dtype);
  });
}

/** The K index tensors of an [..., K] index array (one per leading axis of the indexed tensor). */
function indexTuple(s: Scope, backend: TorchBackend, indices: tf.TensorInfo): number[] {
  const k = indices.shape[indices.shape.length - 1];
  const idx = longIndex(s, backend, indices);
  return Array.from({ length: k }, (_, j) => s.op('select.int', idx, -1, j));
}

function gatherNd({ inputs, backend }: TorchKernelArgs): tf.TensorInfo {
  const { params, indices } = inputs;
  return backend.scoped((s) => backend.output(backend.aten.t('index.Tensor', backend.handle(params), indexTuple(s, backend, indices)), params.dtype));
}

function scatterNd({ inputs, backend, attrs }: TorchKernelArgs): tf.TensorInfo {
  const { indices, updates } = inputs;
  return backend.scoped((s) => {
    const out = s.op('zeros', attrs.shape, updates.dtype, null, backend.device);
    // a fresh tensor, so updating it in place is invisible to tfjs; duplicates add up, as in tfjs
    return backend.output(backend.aten.t('index_put_', out, indexTuple(s, backend, indices), backend.handle(updates), true), updates.dtype);
  });
}

function tensorScatterUpdate({ inputs, backend }: TorchKernelArgs): tf.TensorInfo {
  const { tensor, indices, updates } = inputs;
  return backend.scoped((s) => {
    const out = s.op('clone', backend.handle(tensor));
    return backend.output(backend.aten.t('index_put_', out, indexTuple(s, backend, indices), backend.handle(updates), false), tensor.dtype);
  });
}

function unsortedSegmentSum({ inputs, backend, attrs }: TorchKernelArgs): tf.TensorInfo {
  const { x, segmentIds } = inputs;
  const rest = x.shape.slice(segmentIds.shape.length);
  const numSegments = attrs.numSegments as number;
  return backend.scoped((s) => {
    const out = s.op('zeros', [numSegments, ...rest], x.dtype, null, backend.device);
    const ids = s.op('reshape', longIndex(s, backend, segmentIds), [-1]);
    const rows = s.op('reshape', backend.handle(x), [-1, ...rest]);
    return backend.output(backend.aten.t('index_add_', out, 0, ids, rows), x.dtype);
  });
}

function oneHot({ inputs, backend, attrs }: TorchKernelArgs): tf.TensorInfo {
  const indices = inputs.indices;
  const dtype = (attrs.dtype as tf.DataType) ?? 'int32';
  return backend.scoped((s) => {
    const range = s.op('arange', attrs.depth, 'int32', null, backend.device);
    const hit = s.op('eq.Tensor', s.op('unsqueeze', backend.handle(indices), -1), range);
    const on = s.op('full', [], attrs.onValue, dtype, null, backend.device);
    const off = s.op('full', [], attrs.offValue, dtype, null, backend.device);
    return backend.output(backend.aten.t('where.self', hit, on, off), dtype);
  });
}

function fill({ backend, attrs }: TorchKernelArgs): tf.TensorInfo {
  const dtype = (attrs.dtype as tf.DataType) ?? 'float32';
  return backend.output(backend.aten.t('full', attrs.shape, attrs.value, dtype, null, backend.device), dtype);
}

function range({ backend, attrs }: TorchKernelArgs): tf.TensorInfo {
  const { start, stop, step } = attrs as { start: number; stop: number; step: number };
  const dtype = (attrs.dtype as tf.DataType) ?? 'float32';
  const n = Math.max(0, Math.ceil((stop - start) / step));
  // start + i * step, computed like tfjs (in float64, then stored as dtype)
  const values = dtype === 'int32' ? new Int32Array(n) : new Float32Array(n);
  for (let i = 0; i < n; i++) values[i] = start + i * step;
  return backend.output(backend.upload(values, [n], dtype), dtype);
}

export const SHAPE_KERNELS: KernelTable = {
  Reshape: reshape,
  Identity: identity,
  Transpose: transpose,
  Slice: slice,
  StridedSlice: stridedSlice,
  Concat: concat,
  Pack: pack,
  Unpack: unpack,
  SplitV: splitV,
  Reverse: reverse,
  PadV2: padV2,
  Tile: tile,
  GatherV2: gatherV2,
  GatherNd: gatherNd,
  ScatterNd: scatterNd,
  TensorScatterUpdate: tensorScatterUpdate,
  UnsortedSegmentSum: unsortedSegmentSum,
  OneHot: oneHot,
  Fill: fill,
  Range: range,
};
