// Conv2DBackpropInput (wasm's own is a naive C loop at ~4 GFLOPS).
// Stride 1: correlate dy with the 180°-rotated, in/out-swapped filter in one XNNPACK Conv2D.
// Stride s > 1: polyphase. Output phase (a, c) only sees filter taps W[a::s, c::s], so dx splits into s*s
// stride-1 convolutions of dy, interleaved into dx in one JS pass: no zero-inserted dy, s² less work.
import { type KernelArgs, type Info, run, free, slice, convInfo, assertNoDilation } from './util.js';
import { rotatedFilter } from './filterPrep.js';
import { interleavePhases } from './phaseInterleave.js';

function backpropInputStride1({ inputs, backend: b, attrs }: KernelArgs): Info {
  const { dy, filter } = inputs;
  const inputShape = attrs.inputShape as number[];
  const ci = convInfo(inputShape, filter.shape, attrs, false);
  const { filterHeight: fh, filterWidth: fw, padInfo } = ci;
  const [n, H, W] = inputShape;
  const cout = filter.shape[3];
  const pt = fh - 1 - padInfo.top;
  const pl = fw - 1 - padInfo.left;
  const pb = H + fh - 1 - dy.shape[1] - pt;
  const pr = W + fw - 1 - dy.shape[2] - pl;
  const ft = rotatedFilter(b, filter, { swap: true });
  // Negative padding (a 'valid' conv whose last rows were never used) becomes a crop of dy.
  const src =
    pb < 0 || pr < 0 ? slice(b, dy, [0, 0, 0, 0], [n, dy.shape[1] + Math.min(pb, 0), dy.shape[2] + Math.min(pr, 0), cout]) : dy;
  const out = run(b, 'Conv2D', { x: src, filter: ft }, {
    strides: [1, 1],
    dilations: [1, 1],
    pad: [[0, 0], [pt, Math.max(pb, 0)], [pl, Math.max(pr, 0)], [0, 0]],
    dataFormat: 'NHWC',
  });
  free(b, ft);
  if (src !== dy) free(b, src);
  return out;
}

export function conv2dBackpropInput(args: KernelArgs): Info {
  const { inputs, backend: b, attrs } = args;
  assertNoDilation('Conv2DBackpropInput', attrs);
  const { dy, filter } = inputs;
  const inputShape = attrs.inputShape as number[];
  const ci = convInfo(inputShape, filter.shape, attrs, false);
  const { strideHeight: sh, strideWidth: sw, filterHeight: fh, filterWidth: fw, outHeight: oh, outWidth: ow, padInfo } = ci;
  if (sh === 1 && sw === 1) return backpropInputStride1(args);
  const [n, H, W, cin] = inputShape;
  const cout = filter.shape[3];
  const top = padInfo.top;
  const left = padInfo.left;
  // Padded-input rows q*sh + a (a = phase) for q < Q cover the whole input.
  const Q = Math.ceil((top + H) / sh);
  const P = Math.ceil((left + W) / sw);
  const dyQ = Q < oh || P < ow ? slice(b, dy, [0, 0, 0, 0], [n, Math.min(Q, oh), Math.min(P, ow), cout]) : dy;
  const phases: (Info | null)[] = [];
  for (let a = 0; a < sh; a++) {
    for (let c = 0; c < sw; c++) {
      const ja = Math.max(0, Math.ceil((fh - a) / sh));
      const jb = Math.max(0, Math.ceil((fw - c) / sw));
      if (ja === 0 || jb === 0) {
        phases.push(null); // this phase sees no filter tap: its rows of dx are zero
        continue;
      }
      const wt = rotatedFilter(b, filter, { sh, sw, a, c, swap: true }); // [ja,jb,cout,cin]
      phases.push(run(b, 'Conv2D', { x: dyQ, filter: wt }, {
        strides: [1, 1],
        dilations: [1, 1],
        dataFormat: 'NHWC',
        pad: [[0, 0], [ja - 1, Q - dyQ.shape[1]], [jb - 1, P - dyQ.shape[2]], [0, 0]],
      })); // [n,Q,P,cin]
      free(b, wt);
    }
  }
  const out = interleavePhases(b, phases, sh, sw, top, left, [n, H, W, cin]);
  free(b, ...phases);
  if (dyQ !== dy) free(b, dyQ);
  return out;
}
