// DepthwiseConv2dNativeBackpropInput (missing on wasm): zero-insert dy by the stride, pad, and run
// XNNPACK's depthwise conv with the 180°-rotated filter.
import { type KernelArgs, type Info, run, free, reshape, slice, dilate, convInfo, assertNoDilation } from './util.js';
import { rotatedFilter } from './filterPrep.js';

export function depthwiseBackpropInput({ inputs, backend: b, attrs }: KernelArgs): Info {
  const { dy, filter } = inputs;
  const inputShape = attrs.inputShape as number[];
  assertNoDilation('DepthwiseConv2dNativeBackpropInput', attrs);
  const ci = convInfo(inputShape, filter.shape, attrs, true);
  const { strideHeight: sh, strideWidth: sw, filterHeight: fh, filterWidth: fw, padInfo } = ci;
  const [n, H, W, C] = inputShape;
  const M = filter.shape[3];
  const dyd = dilate(b, dy, sh, sw);
  const pt = fh - 1 - padInfo.top;
  const pl = fw - 1 - padInfo.left;
  const pb = H + fh - 1 - dyd.shape[1] - pt;
  const pr = W + fw - 1 - dyd.shape[2] - pl;
  const f1 = rotatedFilter(b, filter, { swap: false, outShape: [fh, fw, C * M, 1] });
  const src =
    pb < 0 || pr < 0
      ? slice(b, dyd, [0, 0, 0, 0], [n, dyd.shape[1] + Math.min(pb, 0), dyd.shape[2] + Math.min(pr, 0), C * M])
      : dyd;
  const o = run(b, 'DepthwiseConv2dNative', { x: src, filter: f1 }, {
    strides: [1, 1],
    dilations: [1, 1],
    pad: [[0, 0], [pt, Math.max(pb, 0)], [pl, Math.max(pr, 0)], [0, 0]],
  });
  let out = o;
  if (M !== 1) {
    // Channel c's M outputs all flow back into input channel c.
    const o5 = reshape(b, o, [n, H, W, C, M]);
    out = run(b, 'Sum', { x: o5 }, { axis: [4], keepDims: false });
    free(b, o5, o);
  }
  free(b, dyd, f1);
  if (src !== dyd) free(b, src);
  return out;
}
