// Filter rearrangements for the transposed convolutions, done in one JS pass over the wasm heap.
// The stock wasm Reverse is a per-element index loop (138 ms for a [3,3,512,512] filter), and
// Reverse + Transpose (+ StridedSlice per polyphase phase) made three copies; this writes the rotated,
// optionally sub-sampled and in/out-swapped filter straight into one new tensor.
import type { Info, WasmBackendLike } from './util.js';
import type { HeapBackend } from './heapTranspose.js';

const BLOCK = 32;

/**
 * From a [fh,fw,ci,co] filter, builds out[j,k] = filter[a + (ja-1-j)*sh, c + (jb-1-k)*sw], i.e. the taps of
 * phase (a, c) rotated by 180°, with ja = ceil((fh-a)/sh), jb = ceil((fw-c)/sw). With `swap` each tap's
 * [ci,co] block is stored transposed as [co,ci]. `outShape` (same size) lets callers fold the channel axes.
 */
export function rotatedFilter(
  backend: WasmBackendLike,
  filter: Info,
  opts: { sh?: number; sw?: number; a?: number; c?: number; swap: boolean; outShape?: number[] },
): Info {
  const b = backend as HeapBackend;
  const [fh, fw, ci, co] = filter.shape;
  const { sh = 1, sw = 1, a = 0, c = 0, swap } = opts;
  const ja = Math.ceil((fh - a) / sh);
  const jb = Math.ceil((fw - c) / sw);
  const out = b.makeOutput(opts.outShape ?? (swap ? [ja, jb, co, ci] : [ja, jb, ci, co]), 'float32');
  // Views only after the allocation: it may have grown (and detached) the heap.
  const src = b.typedArrayFromHeap(filter);
  const dst = b.typedArrayFromHeap(out);
  const tap = ci * co;
  for (let j = 0; j < ja; j++) {
    for (let k = 0; k < jb; k++) {
      const s0 = ((a + (ja - 1 - j) * sh) * fw + (c + (jb - 1 - k) * sw)) * tap;
      const d0 = (j * jb + k) * tap;
      if (!swap) {
        dst.set(src.subarray(s0, s0 + tap), d0);
        continue;
      }
      // [ci,co] -> [co,ci] in BLOCK x BLOCK tiles so both sides stay in cache.
      for (let i0 = 0; i0 < ci; i0 += BLOCK) {
        const i1 = Math.min(ci, i0 + BLOCK);
        for (let o0 = 0; o0 < co; o0 += BLOCK) {
          const o1 = Math.min(co, o0 + BLOCK);
          for (let i = i0; i < i1; i++) {
            const si = s0 + i * co;
            for (let o = o0; o < o1; o++) dst[d0 + o * ci + i] = src[si + o];
          }
        }
      }
    }
  }
  return out;
}
