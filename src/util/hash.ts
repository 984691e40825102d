// Seed derivation: a 32-bit murmur3-style hash of a list of integers, so independent random streams
// (per epoch, step, slot, identity, image) need no stored state.
export function hashInts(init: number, parts: readonly number[]): number {
  let h = init | 0;
  for (const part of parts) {
    // split into two 32-bit words so values beyond 2^32 (step counters, ids) still hash distinctly
    for (const word of [part >>> 0, Math.floor(part / 4294967296) >>> 0]) {
      let k = Math.imul(word, 0xcc9e2d51);
      k = (k << 15) | (k >>> 17);
      k = Math.imul(k, 0x1b873593);
      h ^= k;
      h = (h << 13) | (h >>> 19);
      h = (Math.imul(h, 5) + 0xe6546b64) | 0;
    }
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
