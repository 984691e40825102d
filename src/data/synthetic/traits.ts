// Family-aware trait sampling. Each trait is keyed by name: a family draws a latent value per trait, and
// each member identity perturbs it slightly (continuous traits) or occasionally re-draws it (categorical
// traits). Keying by name, not by call order, keeps traits stable when the set of drawn traits differs
// between members (e.g. one sibling has glasses and another does not).
import { STREAM, hashName, streamRng } from './seed.js';

/** Latent spread of an identity around its family (the family spread is 1). */
export const FAMILY_SPREAD = 0.35;
/** Probability that an identity re-draws a categorical trait instead of inheriting the family's. */
export const FAMILY_RESAMPLE = 0.2;

/** Draws named traits for one identity. */
export interface TraitSource {
  /** A continuous trait in [lo, hi]. */
  num(name: string, lo: number, hi: number): number;
  /** One of `options`, with optional relative weights. */
  pick<T>(name: string, options: readonly T[], weights?: readonly number[]): T;
  /** True with probability p. */
  chance(name: string, p: number): boolean;
}

function logistic(z: number): number {
  // 1.702 z makes the logistic close to the normal CDF, so values spread over [lo, hi] roughly uniformly
  return 1 / (1 + Math.exp(-1.702 * z));
}

function choose<T>(u: number, options: readonly T[], weights?: readonly number[]): T {
  if (options.length === 0) throw new Error('choose: no options');
  const w = weights ?? options.map(() => 1);
  const total = w.reduce((a, b) => a + b, 0);
  let acc = 0;
  for (let i = 0; i < options.length; i++) {
    acc += w[i] / total;
    if (u < acc) return options[i];
  }
  return options[options.length - 1];
}

/** Trait source of identity `id` in family `family`, under master seed `seed`. */
export function identityTraits(seed: number, family: number, id: number): TraitSource {
  const familyStream = (name: string) => streamRng(seed, STREAM.family, family, hashName(name));
  const ownStream = (name: string) => streamRng(seed, STREAM.identity, id, hashName(name));
  const uniform = (name: string): number => {
    const own = ownStream(name);
    return own.next() < FAMILY_RESAMPLE ? own.next() : familyStream(name).next();
  };
  return {
    num(name, lo, hi) {
      const z = (familyStream(name).normal() + FAMILY_SPREAD * ownStream(name).normal()) / Math.hypot(1, FAMILY_SPREAD);
      return lo + (hi - lo) * logistic(z);
    },
    pick(name, options, weights) {
      return choose(uniform(name), options, weights);
    },
    chance(name, p) {
      return uniform(name) < p;
    },
  };
}
