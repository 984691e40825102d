// DepthwiseConv2dNativeBackpropFilter (missing on wasm): treat the N*C (image, channel) pairs as channels
// of one image, use dy as an [oh,ow] depthwise filter dilated by the stride, then sum over N.
import { type KernelArgs, type Info, run, free, transpose, reshape, slice, convInfo, assertNoDilation } from './util.js';

export function depthwiseBackpropFilter({ inputs, backend: b, attrs }: KernelArgs): Info {
  const { x, dy } = inputs;
  const filterShape = attrs.filterShape as number[];
  assertNoDilation('DepthwiseConv2dNativeBackpropFilter', attrs);
  if (filterShape[3] !== 1)
    throw new Error(`DepthwiseConv2dNativeBackpropFilter: channel multiplier ${filterShape[3]} is not supported by the attfc kernel pack (only 1)`);
  const ci = convInfo(x.shape, filterShape, attrs, true);
  const { strideHeight: sh, strideWidth: sw, filterHeight: fh, filterWidth: fw, outHeight: oh, outWidth: ow, padInfo } = ci;
  const [n, H, W, C] = x.shape;
  const xt = transpose(b, x, [1, 2, 0, 3]);
  const x1 = reshape(b, xt, [1, H, W, n * C]);
  const dt = transpose(b, dy, [1, 2, 0, 3]);
  const f1 = reshape(b, dt, [oh, ow, n * C, 1]);
  const top = padInfo.top;
  const left = padInfo.left;
  const bottom = Math.max(0, (oh - 1) * sh + fh - H - top);
  const right = Math.max(0, (ow - 1) * sw + fw - W - left);
  const r = run(b, 'DepthwiseConv2dNative', { x: x1, filter: f1 }, {
    strides: [1, 1],
    dilations: [sh, sw],
    pad: [[0, 0], [top, bottom], [left, right], [0, 0]],
  });
  const r2 = r.shape[1] !== fh || r.shape[2] !== fw ? slice(b, r, [0, 0, 0, 0], [1, fh, fw, n * C]) : r;
  const r4 = reshape(b, r2, [fh, fw, n, C]);
  const summed = run(b, 'Sum', { x: r4 }, { axis: [2], keepDims: false });
  const out = reshape(b, summed, filterShape);
  free(b, xt, x1, dt, f1, r, r4, summed);
  if (r2 !== r) free(b, r2);
  return out;
}
