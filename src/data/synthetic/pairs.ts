// Verification pairs over held-out identities: alternating same / different (so every contiguous fold
// of the 10-fold protocol is balanced), different pairs mostly hard negatives from one family.
import type { ImageKey } from './render.js';
import { familyOf } from './identity.js';
import type { ResolvedSynthOptions } from './options.js';
import { STREAM, streamRng } from './seed.js';

/** Share of different-identity pairs drawn from the same family (look-alikes). */
export const HARD_NEGATIVE_SHARE = 0.8;

export interface PlannedPair {
  a: ImageKey;
  b: ImageKey;
  same: boolean;
}

/** Held-out identity ids: right after the training identities. */
export function heldOutIds(opts: Pick<ResolvedSynthOptions, 'identities' | 'verifyIdentities'>): number[] {
  return Array.from({ length: opts.verifyIdentities }, (_, i) => opts.identities + i);
}

/**
 * The verification pairs of a synthetic dataset: pair i is "same" iff i is even. Images of held-out
 * identities use indices 0..max(2, imagesPerIdentity)-1, like the training identities.
 */
export function planVerificationPairs(opts: ResolvedSynthOptions): PlannedPair[] {
  const ids = heldOutIds(opts);
  const perIdentity = Math.max(2, opts.imagesPerIdentity);
  const rng = streamRng(opts.seed, STREAM.pairs, opts.identities, opts.verifyIdentities, opts.verifyPairs);
  const byFamily = new Map<number, number[]>();
  for (const id of ids) {
    const f = familyOf(id, opts.familySize);
    const members = byFamily.get(f) ?? [];
    members.push(id);
    byFamily.set(f, members);
  }
  const withSiblings = ids.filter((id) => (byFamily.get(familyOf(id, opts.familySize)) ?? []).length > 1);
  const image = (id: number): ImageKey => ({ id, k: rng.int(perIdentity) });

  const pairs: PlannedPair[] = [];
  for (let i = 0; i < opts.verifyPairs; i++) {
    if (i % 2 === 0) {
      const id = ids[rng.int(ids.length)];
      const ka = rng.int(perIdentity);
      const kb = (ka + 1 + rng.int(perIdentity - 1)) % perIdentity;
      pairs.push({ a: { id, k: ka }, b: { id, k: kb }, same: true });
      continue;
    }
    let a: number;
    let b: number;
    if (withSiblings.length > 0 && rng.next() < HARD_NEGATIVE_SHARE) {
      a = withSiblings[rng.int(withSiblings.length)];
      const siblings = (byFamily.get(familyOf(a, opts.familySize)) ?? []).filter((id) => id !== a);
      b = siblings[rng.int(siblings.length)];
    } else {
      const j = rng.int(ids.length);
      a = ids[j];
      b = ids[(j + 1 + rng.int(ids.length - 1)) % ids.length];
    }
    pairs.push({ a: image(a), b: image(b), same: false });
  }
  return pairs;
}
