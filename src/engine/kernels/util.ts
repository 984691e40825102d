// Helpers for kernels composed from existing wasm kernels. They call other kernels' kernelFunc directly
// and free intermediates with backend.disposeData, so the autodiff tape never sees them.
import * as tf from '@tensorflow/tfjs-core';

export type Info = tf.TensorInfo;
export interface WasmBackendLike {
  disposeData(dataId: object): boolean;
  incRef(dataId: object): void;
}
export interface KernelArgs {
  inputs: Record<string, Info>;
  backend: WasmBackendLike;
  attrs: Record<string, unknown>;
}
export type ComposedKernel = (args: KernelArgs) => Info;

const cache = new Map<string, tf.KernelFunc>();

/** The stock wasm implementation of a kernel, captured before the pack replaces any of them. */
export function stockKernel(name: string): tf.KernelFunc {
  let k = cache.get(name);
  if (!k) {
    const cfg = tf.getKernel(name, 'wasm');
    if (!cfg) throw new Error(`wasm backend has no kernel ${name}`);
    k = cfg.kernelFunc;
    cache.set(name, k);
  }
  return k;
}

export function run(b: WasmBackendLike, name: string, inputs: Record<string, Info> | Info[], attrs: Record<string, unknown> = {}): Info {
  return stockKernel(name)({ inputs: inputs as tf.NamedTensorInfoMap, backend: b as unknown as tf.KernelBackend, attrs: attrs as tf.NamedAttrMap }) as Info;
}

export function free(b: WasmBackendLike, ...ts: (Info | null | undefined)[]): void {
  for (const t of ts) if (t) b.disposeData(t.dataId);
}

export const transpose = (b: WasmBackendLike, x: Info, perm: number[]) => run(b, 'Transpose', { x }, { perm });
export const reshape = (b: WasmBackendLike, x: Info, shape: number[]) => run(b, 'Reshape', { x }, { shape });
export const slice = (b: WasmBackendLike, x: Info, begin: number[], size: number[]) => run(b, 'Slice', { x }, { begin, size });
export const padZeros = (b: WasmBackendLike, x: Info, paddings: [number, number][]) =>
  run(b, 'PadV2', { x }, { paddings, constantValue: 0 });
export const stridedSlice = (b: WasmBackendLike, x: Info, begin: number[], end: number[], strides: number[]) =>
  run(b, 'StridedSlice', { x }, { begin, end, strides, beginMask: 0, endMask: 0, ellipsisMask: 0, newAxisMask: 0, shrinkAxisMask: 0 });
export const zeros = (b: WasmBackendLike, shape: number[]) => run(b, 'Fill', {}, { shape, value: 0, dtype: 'float32' });

/** Zero-inserts dy between rows/columns by the stride (used for transposed convolutions with stride > 1). */
export function dilate(b: WasmBackendLike, dy: Info, sh: number, sw: number): Info {
  if (sh === 1 && sw === 1) {
    b.incRef(dy.dataId);
    return dy;
  }
  const [n, oh, ow, c] = dy.shape;
  const r6 = reshape(b, dy, [n, oh, 1, ow, 1, c]);
  const p6 = padZeros(b, r6, [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]]);
  const r4 = reshape(b, p6, [n, oh * sh, ow * sw, c]);
  const s = slice(b, r4, [0, 0, 0, 0], [n, (oh - 1) * sh + 1, (ow - 1) * sw + 1, c]);
  free(b, r6, p6, r4);
  return s;
}

/** Conv geometry from tfjs' own helper, so padding modes ('same', 'valid', explicit) match the cpu backend. */
export function convInfo(
  xShape: number[],
  filterShape: number[],
  attrs: Record<string, unknown>,
  depthwise: boolean,
): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides as number | [number, number],
    (attrs.dilations as number | [number, number] | undefined) ?? 1,
    attrs.pad as 'same' | 'valid' | number | tf.backend_util.ExplicitPadding,
    attrs.dimRoundingMode as 'floor' | 'round' | 'ceil' | undefined,
    depthwise,
    'channelsLast',
  );
}

/** The composed kernels assume unit dilation; fail loudly rather than compute a wrong gradient. */
export function assertNoDilation(kernel: string, attrs: Record<string, unknown>): void {
  const d = attrs.dilations as number | number[] | undefined;
  const ok = d === undefined || d === 1 || (Array.isArray(d) && d.every((v) => v === 1));
  if (!ok) throw new Error(`${kernel}: dilations ${JSON.stringify(d)} are not supported by the attfc kernel pack`);
}
