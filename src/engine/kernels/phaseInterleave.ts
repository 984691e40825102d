// Interleaves the sh*sw polyphase outputs of a strided transposed conv into dx in one JS pass over the
// wasm heap (it replaced two stock Packs, a Reshape and a Slice: three full-size copies).
import type { Info, WasmBackendLike } from './util.js';
import type { HeapBackend } from './heapTranspose.js';

/**
 * phases[a*sw+c] is [n,Q,P,C] (or null: all zeros) and holds padded-input rows q*sh+a, cols p*sw+c.
 * Returns dx [n,H,W,C] with dx[i,y,x] = phase(y+top, x+left).
 */
export function interleavePhases(
  backend: WasmBackendLike,
  phases: (Info | null)[],
  sh: number,
  sw: number,
  top: number,
  left: number,
  outShape: number[],
): Info {
  const b = backend as HeapBackend;
  const [n, H, W, C] = outShape;
  const out = b.makeOutput(outShape, 'float32');
  // Views only after the allocation: it may have grown (and detached) the heap.
  const dst = b.typedArrayFromHeap(out);
  const src = phases.map((p) => (p ? b.typedArrayFromHeap(p) : null));
  const shape = phases.find((p) => p)?.shape ?? [n, 1, 1, C];
  const Q = shape[1];
  const P = shape[2];
  let d = 0;
  for (let i = 0; i < n; i++) {
    for (let y = 0; y < H; y++) {
      const yy = y + top;
      const a = yy % sh;
      const rowBase = (i * Q + (yy - a) / sh) * P;
      for (let x = 0; x < W; x++) {
        const xx = x + left;
        const c = xx % sw;
        const s = src[a * sw + c];
        if (!s) {
          dst.fill(0, d, d + C);
          d += C;
          continue;
        }
        let o = (rowBase + (xx - c) / sw) * C;
        for (let k = 0; k < C; k++) dst[d++] = s[o++];
      }
    }
  }
  return out;
}
