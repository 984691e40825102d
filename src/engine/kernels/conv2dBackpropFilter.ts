// Conv2DBackpropFilter (missing on wasm): the filter gradient is itself a correlation of x with dy.
// With x as [Cin,H,W,N] and dy as an [oh,ow,N,Cout] "filter" dilated by the stride, one XNNPACK Conv2D
// yields [Cin,fh,fw,Cout]; a transpose gives [fh,fw,Cin,Cout].
import { type KernelArgs, type Info, run, free, transpose, reshape, slice, stridedSlice, convInfo, assertNoDilation } from './util.js';

/**
 * 1x1 filters without padding: dW = x^T . dy over all pixels, one XNNPACK matmul. (The dilated-conv form
 * would run a conv whose "filter" is the whole dy image, which XNNPACK handles poorly.)
 */
function pointwise(b: KernelArgs['backend'], x: Info, dy: Info, sh: number, sw: number, filterShape: number[]): Info {
  const [n, , , cin] = x.shape;
  const [, oh, ow, cout] = dy.shape;
  const xs = sh === 1 && sw === 1 ? x : stridedSlice(b, x, [0, 0, 0, 0], [n, (oh - 1) * sh + 1, (ow - 1) * sw + 1, cin], [1, sh, sw, 1]);
  const m = n * oh * ow;
  const x2 = reshape(b, xs, [1, m, cin]);
  const xt = transpose(b, x2, [0, 2, 1]);
  const d2 = reshape(b, dy, [1, m, cout]);
  const w = run(b, 'BatchMatMul', { a: xt, b: d2 }, { transposeA: false, transposeB: false });
  const out = reshape(b, w, filterShape);
  free(b, x2, xt, d2, w);
  if (xs !== x) free(b, xs);
  return out;
}

export function conv2dBackpropFilter({ inputs, backend: b, attrs }: KernelArgs): Info {
  const { x, dy } = inputs;
  const filterShape = attrs.filterShape as number[];
  assertNoDilation('Conv2DBackpropFilter', attrs);
  const ci = convInfo(x.shape, filterShape, attrs, false);
  const { strideHeight: sh, strideWidth: sw, filterHeight: fh, filterWidth: fw, outHeight: oh, outWidth: ow, padInfo } = ci;
  const [, H, W, cin] = x.shape;
  const cout = filterShape[3];
  if (fh === 1 && fw === 1 && padInfo.top === 0 && padInfo.left === 0) return pointwise(b, x, dy, sh, sw, filterShape);
  const xT = transpose(b, x, [3, 1, 2, 0]);
  const dyT = transpose(b, dy, [1, 2, 0, 3]);
  const top = padInfo.top;
  const left = padInfo.left;
  const bottom = Math.max(0, (oh - 1) * sh + fh - H - top);
  const right = Math.max(0, (ow - 1) * sw + fw - W - left);
  const r = run(b, 'Conv2D', { x: xT, filter: dyT }, {
    strides: [1, 1],
    dilations: [sh, sw],
    pad: [[0, 0], [top, bottom], [left, right], [0, 0]],
    dataFormat: 'NHWC',
  });
  const r2 = r.shape[1] !== fh || r.shape[2] !== fw ? slice(b, r, [0, 0, 0, 0], [cin, fh, fw, cout]) : r;
  const out = transpose(b, r2, [1, 2, 0, 3]);
  free(b, xT, dyT, r);
  if (r2 !== r) free(b, r2);
  return out;
}
