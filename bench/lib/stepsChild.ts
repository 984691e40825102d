// One bench:steps model on backend torch, in its own process: the median of N training steps, or a
// per-kernel profile of one step (the native graph's own timers, and tf.profile for everything around it).
import * as tf from '@tensorflow/tfjs-core';
import { initEngine, shutdownEngine } from '../../src/engine/index.js';
import type { TorchBackend } from '../../src/engine/torch/index.js';
import { makeTrainStep } from './step.js';
import { STEP_MODELS } from './stepModels.js';
import type { StepsChildFlags } from './flags.js';

export async function runStepsChild(flags: StepsChildFlags): Promise<void> {
  const m = STEP_MODELS[flags.model];
  await initEngine({ backend: 'torch', threads: 2, log: false });
  const s = makeTrainStep(m.backbone, m.inputSize, m.batch, 10000, 0, m.widthMultiplier);
  s.step();
  s.step();
  if (flags.profile) {
    const native = (tf.backend() as TorchBackend).native;
    native.graphProfile(true);
    const t0 = performance.now();
    const prof = await tf.profile(() => s.step());
    const stepMs = performance.now() - t0;
    const graph = native.graphProfile(false);
    const kernels = new Map<string, [number, number]>();
    for (const k of prof.kernels) {
      const e = kernels.get(k.name) ?? [0, 0];
      e[0] += k.kernelTimeMs as number;
      e[1]++;
      kernels.set(k.name, e);
    }
    console.log(JSON.stringify({ stepMs, kernelCalls: prof.kernels.length, graph, kernels: Object.fromEntries(kernels) }));
  } else {
    const times: number[] = [];
    for (let i = 0; i < flags.steps; i++) {
      const t0 = performance.now();
      s.step();
      times.push((performance.now() - t0) / 1000);
    }
    const sorted = [...times].sort((a, b) => a - b);
    console.log(JSON.stringify({ median: sorted[Math.floor(sorted.length / 2)], times }));
  }
  s.dispose();
  shutdownEngine();
}
