// Cache-blocked 2-D transpose written in JS straight over the wasm heap. The stock wasm Transpose walks
// the output with per-element index arithmetic; tiling keeps both the read and the write side in cache.
import type { Info, WasmBackendLike } from './util.js';

export interface HeapBackend extends WasmBackendLike {
  makeOutput(shape: number[], dtype: 'float32'): Info;
  typedArrayFromHeap(t: Info): Float32Array;
}

const TILE = 64;

/** [..., r, c] float32 with a leading batch of 1 -> [..., c, r]. */
export function transposeLast2(backend: WasmBackendLike, x: Info): Info {
  const b = backend as HeapBackend;
  const k = x.shape.length;
  const rows = x.shape[k - 2];
  const cols = x.shape[k - 1];
  const out = b.makeOutput([...x.shape.slice(0, -2), cols, rows], 'float32');
  // Views only after the allocation: it may have grown (and detached) the heap.
  const src = b.typedArrayFromHeap(x);
  const dst = b.typedArrayFromHeap(out);
  for (let r0 = 0; r0 < rows; r0 += TILE) {
    const r1 = Math.min(rows, r0 + TILE);
    for (let c0 = 0; c0 < cols; c0 += TILE) {
      const c1 = Math.min(cols, c0 + TILE);
      for (let r = r0; r < r1; r++) {
        let s = r * cols + c0;
        for (let c = c0; c < c1; c++) dst[c * rows + r] = src[s++];
      }
    }
  }
  return out;
}
