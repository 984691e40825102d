// Convolutions and pooling. tfjs tensors are NHWC by shape, but a torch tensor behind one may have any
// strides, so each convolution runs in the memory layout this libtorch's oneDNN is fastest at and its
// output stays in it, behind an NHWC-shaped view: dense k x k convolutions (k > 1) in NCHW memory, 1x1
// and depthwise ones in channels-last memory (2-4x faster there: NCHW makes oneDNN reorder them into
// its blocked format, while for 3x3 convolutions NCHW is as fast or faster). Batch norm follows its
// input's layout. A layout change costs one copy, where an IResNet block's 1x1 shortcut meets its 3x3
// body or the NHWC input meets the first convolution. Reading a tensor back, reshaping or flattening it
// yields NHWC order as tfjs expects, whatever the memory layout. Filters go from
// tfjs's [kh, kw, in, out] (depthwise: [kh, kw, C, multiplier]) to ATen's [out, in/groups, kh, kw].
// ATen pads symmetrically; tfjs 'same' padding can be one larger at the bottom/right, in which case
// the input is padded explicitly first.
import * as tf from '@tensorflow/tfjs-core';
import type { TorchBackend } from '../backend.js';
import type { Scope } from '../aten.js';
import type { KernelTable, TorchKernelArgs } from './types.js';

type Pad = 'same' | 'valid' | number | tf.backend_util.ExplicitPadding;
type Info4 = [number, number, number, number];

interface Geometry {
  info: tf.backend_util.Conv2DInfo;
  groups: number;
  symmetric: boolean;
  /** ATen's padding when symmetric, else 0 (the input is padded explicitly). */
  padding: [number, number];
}

function geometry(xShape: number[], filterShape: number[], attrs: Record<string, unknown>, depthwise: boolean): Geometry {
  const format = (attrs.dataFormat as string | undefined) ?? 'NHWC';
  if (format !== 'NHWC') throw new Error(`attfc: data format ${format} is not implemented on backend torch (NHWC only)`);
  const info = tf.backend_util.computeConv2DInfo(
    xShape as Info4,
    filterShape as Info4,
    attrs.strides as [number, number],
    (attrs.dilations as [number, number] | undefined) ?? 1,
    attrs.pad as Pad,
    attrs.dimRoundingMode as 'floor' | undefined,
    depthwise,
  );
  const p = info.padInfo;
  const symmetric = p.top === p.bottom && p.left === p.right;
  return { info, groups: depthwise ? info.inChannels : 1, symmetric, padding: symmetric ? [p.top, p.left] : [0, 0] };
}

type Layout = 'contiguous' | 'channels_last';

/** The memory layout a convolution of this geometry runs fastest in (see the file comment). */
function layoutFor(g: Geometry, depthwise: boolean): Layout {
  return depthwise || (g.info.filterHeight === 1 && g.info.filterWidth === 1) ? 'channels_last' : 'contiguous';
}

/** NHWC-shaped -> NCHW-shaped in the given memory layout (free when the memory already is in it). */
const toNchw = (s: Scope, h: number, layout: Layout) => s.op('contiguous', s.op('permute', h, [0, 3, 1, 2]), layout);
/** NCHW -> the NHWC-shaped view tfjs sees (owned by the caller; no copy). */
const toNhwc = (s: Scope, h: number) => s.aten.t('permute', h, [0, 2, 3, 1]);

function padExplicitly(s: Scope, xNchw: number, g: Geometry): number {
  if (g.symmetric) return xNchw;
  const p = g.info.padInfo;
  return s.op('constant_pad_nd', xNchw, [p.left, p.right, p.top, p.bottom], 0);
}

/** tfjs filter -> ATen weight [out, in/groups, kh, kw] (a view for dense convs). */
function torchWeight(s: Scope, filter: number, filterShape: number[], depthwise: boolean): number {
  if (!depthwise) return s.op('permute', filter, [3, 2, 0, 1]);
  const [kh, kw, c, m] = filterShape;
  return s.op('unsqueeze', s.op('permute', s.op('reshape', filter, [kh, kw, c * m]), [2, 0, 1]), 1);
}

/** ATen weight gradient -> tfjs filter layout, contiguous. */
function tfjsFilter(s: Scope, w: number, filterShape: number[], depthwise: boolean): number {
  if (!depthwise) return s.aten.t('contiguous', s.op('permute', w, [2, 3, 1, 0]));
  const [kh, kw, c, m] = filterShape;
  return s.aten.t('reshape', s.op('contiguous', s.op('permute', s.op('reshape', w, [c * m, kh, kw]), [1, 2, 0])), [kh, kw, c, m]);
}

function convForward(s: Scope, backend: TorchBackend, x: tf.TensorInfo, filter: tf.TensorInfo, bias: tf.TensorInfo | undefined, g: Geometry, depthwise: boolean): number {
  const i = g.info;
  const xin = padExplicitly(s, toNchw(s, backend.handle(x), layoutFor(g, depthwise)), g);
  const w = torchWeight(s, backend.handle(filter), filter.shape, depthwise);
  const y = s.op('convolution', xin, w, bias ? backend.handle(bias) : null, [i.strideHeight, i.strideWidth], g.padding, [i.dilationHeight, i.dilationWidth], false, [0, 0], g.groups);
  return toNhwc(s, y);
}

function conv(depthwise: boolean) {
  return ({ inputs, backend, attrs }: TorchKernelArgs): tf.TensorInfo => {
    const { x, filter } = inputs;
    const g = geometry(x.shape, filter.shape, attrs, depthwise);
    return backend.scoped((s) => backend.output(convForward(s, backend, x, filter, undefined, g, depthwise), 'float32'));
  };
}

function convBackpropInput(depthwise: boolean) {
  return ({ inputs, backend, attrs }: TorchKernelArgs): tf.TensorInfo => {
    const { dy, filter } = inputs;
    const inputShape = attrs.inputShape as number[];
    const g = geometry(inputShape, filter.shape, attrs, depthwise);
    const i = g.info;
    const p = i.padInfo;
    return backend.scoped((s) => {
      const [n, h, w, c] = inputShape;
      const paddedH = g.symmetric ? h : h + p.top + p.bottom;
      const paddedW = g.symmetric ? w : w + p.left + p.right;
      // convolution_backward reads only the input's shape and layout for the input gradient
      const layout = layoutFor(g, depthwise);
      const shapeOnly = s.op('empty.memory_format', [n, c, paddedH, paddedW], 'float32', null, backend.device, null, layout);
      const wt = torchWeight(s, backend.handle(filter), filter.shape, depthwise);
      const [dx] = s.ops('convolution_backward', toNchw(s, backend.handle(dy), layout), shapeOnly, wt, null, [i.strideHeight, i.strideWidth], g.padding, [i.dilationHeight, i.dilationWidth], false, [0, 0], g.groups, [true, false, false]);
      let grad = dx;
      if (!g.symmetric) grad = s.op('slice.Tensor', s.op('slice.Tensor', grad, 2, p.top, p.top + h, 1), 3, p.left, p.left + w, 1);
      return backend.output(toNhwc(s, grad), 'float32');
    });
  };
}

/**
 * The weight gradient of a 1x1 convolution as one matrix product: dW[ci, co] = sum over output pixels of
 * x[pixel seen, ci] * dy[pixel, co]. libtorch 1.13's own kernel returns wrong values (and can corrupt
 * memory) for some strided 1x1 channels-last shapes, such as IResNet's stride-2 downsampling shortcut.
 */
function pointwiseFilterGrad(s: Scope, backend: TorchBackend, x: tf.TensorInfo, dy: tf.TensorInfo, i: tf.backend_util.Conv2DInfo): number {
  const p = i.padInfo;
  let h = backend.handle(x);
  if (p.top || p.bottom || p.left || p.right) h = s.op('constant_pad_nd', h, [0, 0, p.left, p.right, p.top, p.bottom], 0);
  h = s.op('slice.Tensor', h, 1, 0, (i.outHeight - 1) * i.strideHeight + 1, i.strideHeight);
  h = s.op('slice.Tensor', h, 2, 0, (i.outWidth - 1) * i.strideWidth + 1, i.strideWidth);
  const seen = s.op('reshape', h, [-1, i.inChannels]);
  const grad = s.op('mm', s.op('t', seen), s.op('reshape', backend.handle(dy), [-1, i.outChannels]));
  return s.aten.t('reshape', grad, [1, 1, i.inChannels, i.outChannels]);
}

function convBackpropFilter(depthwise: boolean) {
  return ({ inputs, backend, attrs }: TorchKernelArgs): tf.TensorInfo => {
    const { x, dy } = inputs;
    const filterShape = attrs.filterShape as number[];
    const g = geometry(x.shape, filterShape, attrs, depthwise);
    const i = g.info;
    if (!depthwise && i.filterHeight === 1 && i.filterWidth === 1 && i.dilationHeight === 1 && i.dilationWidth === 1)
      return backend.scoped((s) => backend.output(pointwiseFilterGrad(s, backend, x, dy, i), 'float32'));
    return backend.scoped((s) => {
      const layout = layoutFor(g, depthwise);
      const xin = padExplicitly(s, toNchw(s, backend.handle(x), layout), g);
      const [kh, kw, cin, cout] = filterShape;
      const wShape = depthwise ? [cin * cout, 1, kh, kw] : [cout, cin, kh, kw];
      // convolution_backward reads only the weight's shape for the weight gradient
      const shapeOnly = s.op('empty.memory_format', wShape, 'float32', null, backend.device, null, null);
      const [, dw] = s.ops('convolution_backward', toNchw(s, backend.handle(dy), layout), xin, shapeOnly, null, [i.strideHeight, i.strideWidth], g.padding, [i.dilationHeight, i.dilationWidth], false, [0, 0], g.groups, [false, true, false]);
      return backend.output(tfjsFilter(s, dw, filterShape, depthwise), 'float32');
    });
  };
}

/** y = activation(x) for tfjs's fused kernels ('linear', 'relu', 'relu6', 'elu', 'sigmoid', 'leakyrelu', 'prelu'). */
export function applyActivation(s: Scope, backend: TorchBackend, h: number, activation: string | undefined, prelu?: tf.TensorInfo, leakyAlpha?: number): number {
  switch (activation ?? 'linear') {
    case 'linear':
      return h;
    case 'relu':
      return s.op('relu', h);
    case 'relu6':
      return s.op('hardtanh', h, 0, 6);
    case 'elu':
      return s.op('elu', h);
    case 'sigmoid':
      return s.op('sigmoid', h);
    case 'leakyrelu':
      return s.op('leaky_relu', h, leakyAlpha ?? 0.2);
    case 'prelu': {
      if (!prelu) throw new Error('prelu activation without its weights');
      return s.op('where.self', s.op('gt.Scalar', h, 0), h, s.op('mul.Tensor', h, backend.handle(prelu)));
    }
    default:
      throw new Error(`attfc: activation ${activation} is not implemented on backend torch`);
  }
}

function fusedConv(depthwise: boolean) {
  return ({ inputs, backend, attrs }: TorchKernelArgs): tf.TensorInfo => {
    const { x, filter, bias, preluActivationWeights } = inputs;
    const g = geometry(x.shape, filter.shape, attrs, depthwise);
    return backend.scoped((s) => {
      let y = s.tmp(convForward(s, backend, x, filter, undefined, g, depthwise));
      if (bias) y = s.op('add.Tensor', y, backend.handle(bias));
      y = applyActivation(s, backend, y, attrs.activation as string, preluActivationWeights, attrs.leakyreluAlpha as number);
      return backend.output(s.keep(y), 'float32');
    });
  };
}

function poolGeometry(x: tf.TensorInfo, attrs: Record<string, unknown>): { info: tf.backend_util.Conv2DInfo; padding: [number, number] } {
  const info = tf.backend_util.computePool2DInfo(x.shape as Info4, attrs.filterSize as [number, number], attrs.strides as [number, number], 1, attrs.pad as Pad, attrs.dimRoundingMode as 'floor' | undefined);
  const p = info.padInfo;
  if (p.top !== p.bottom || p.left !== p.right) throw new Error('attfc: pooling with asymmetric padding is not implemented on backend torch');
  return { info, padding: [p.top, p.left] };
}

function avgPool({ inputs, backend, attrs }: TorchKernelArgs): tf.TensorInfo {
  const x = inputs.x;
  const { info, padding } = poolGeometry(x, attrs);
  return backend.scoped((s) => {
    // count_include_pad false: padded cells are not averaged, as in tfjs
    const y = s.op('avg_pool2d', toNchw(s, backend.handle(x), 'contiguous'), [info.filterHeight, info.filterWidth], [info.strideHeight, info.strideWidth], padding, false, false, null);
    return backend.output(toNhwc(s, y), 'float32');
  });
}

function avgPoolGrad({ inputs, backend, attrs }: TorchKernelArgs): tf.TensorInfo {
  const { dy, input } = inputs;
  const { info, padding } = poolGeometry(input, attrs);
  return backend.scoped((s) => {
    const g = s.op('avg_pool2d_backward', toNchw(s, backend.handle(dy), 'contiguous'), toNchw(s, backend.handle(input), 'contiguous'), [info.filterHeight, info.filterWidth], [info.strideHeight, info.strideWidth], padding, false, false, null);
    return backend.output(toNhwc(s, g), 'float32');
  });
}

function maxPool({ inputs, backend, attrs }: TorchKernelArgs): tf.TensorInfo {
  const x = inputs.x;
  const { info, padding } = poolGeometry(x, attrs);
  return backend.scoped((s) => {
    const y = s.op('max_pool2d', toNchw(s, backend.handle(x), 'contiguous'), [info.filterHeight, info.filterWidth], [info.strideHeight, info.strideWidth], padding, [1, 1], false);
    return backend.output(toNhwc(s, y), 'float32');
  });
}

export const CONV_KERNELS: KernelTable = {
  Conv2D: conv(false),
  Conv2DBackpropInput: convBackpropInput(false),
  Conv2DBackpropFilter: convBackpropFilter(false),
  DepthwiseConv2dNative: conv(true),
  DepthwiseConv2dNativeBackpropInput: convBackpropInput(true),
  DepthwiseConv2dNativeBackpropFilter: convBackpropFilter(true),
  FusedConv2D: fusedConv(false),
  FusedDepthwiseConv2D: fusedConv(true),
  AvgPool: avgPool,
  AvgPoolGrad: avgPoolGrad,
  MaxPool: maxPool,
};
