// Tensor-leak checks: a training step must leave tf.memory().numTensors unchanged.
import * as tf from '@tensorflow/tfjs-core';

export interface LeakReport {
  before: number;
  after: number;
  perStep: number[];
}

/**
 * Runs `step` `warmup` times (first calls may create lasting state: optimizer slots, caches), then
 * `steps` more times, recording tf.memory().numTensors after each. `await`s async steps.
 */
export async function countTensorsAcrossSteps(step: () => unknown, steps = 3, warmup = 1): Promise<LeakReport> {
  for (let i = 0; i < warmup; i++) await step();
  const before = tf.memory().numTensors;
  const perStep: number[] = [];
  for (let i = 0; i < steps; i++) {
    await step();
    perStep.push(tf.memory().numTensors);
  }
  return { before, after: perStep[perStep.length - 1] ?? before, perStep };
}

/** Throws if any of the measured steps changed the live tensor count. */
export async function assertNoTensorLeak(step: () => unknown, steps = 3, warmup = 1, what = 'step'): Promise<void> {
  const r = await countTensorsAcrossSteps(step, steps, warmup);
  const grew = r.perStep.find((n) => n !== r.before);
  if (grew !== undefined)
    throw new Error(`${what} leaks tensors: ${r.before} live before, then ${r.perStep.join(', ')} after each of ${steps} steps`);
}
