// Seeded initial values for backbone parameters.
import type { Rng } from '../util/rng.js';
import type { InitRule } from './spec.js';

/** `size` values drawn by `rule`; constants draw nothing, so the stream only depends on random params. */
export function initialValues(rule: InitRule, size: number, rng: Rng): Float32Array {
  const out = new Float32Array(size);
  switch (rule.type) {
    case 'constant':
      out.fill(rule.value);
      break;
    case 'normal':
      for (let i = 0; i < size; i++) out[i] = rng.normal() * rule.std;
      break;
    case 'uniform':
      for (let i = 0; i < size; i++) out[i] = rng.uniform(-rule.bound, rule.bound);
      break;
  }
  return out;
}
