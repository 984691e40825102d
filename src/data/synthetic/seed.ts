// Stateless seed derivation: every random stream of the generator is keyed by the tuple it depends on
// (seed, stream tag, identity/family, image index, trait name), so any identity or image can be produced on
// its own, in any order, on any thread, with identical results.
import { hashInts } from '../../util/hash.js';
import { Rng } from '../../util/rng.js';

/** Stream tags keep the streams of different purposes apart even when their numeric keys coincide. */
export const STREAM = {
  family: 0x46414d31,
  identity: 0x49444e31,
  image: 0x494d4731,
  noise: 0x4e4f5331,
  pairs: 0x50525331,
} as const;

/** A 32-bit hash of a list of integers (murmur3-style mixing), used as the seed of one random stream. */
export function mixSeed(...parts: number[]): number {
  return hashInts(0x9747b28c, parts);
}

/** FNV-1a hash of a string (trait names), so traits are keyed by name rather than by call order. */
export function hashName(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** A generator for the stream identified by `parts`. */
export function streamRng(...parts: number[]): Rng {
  return new Rng(mixSeed(...parts));
}
