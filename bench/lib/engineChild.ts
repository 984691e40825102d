// One benchmark configuration (backend, threads, kernel pack on/off), run in its own process by
// bench/engine.ts.
import * as tf from '@tensorflow/tfjs-core';
import { Worker } from 'node:worker_threads';
import { initEngine, shutdownEngine, wasmHeapBytes } from '../../src/engine/index.js';
import { unregisterKernelPack } from '../../src/engine/kernels/index.js';
import { timeMs } from './timing.js';
import type { EngineChildFlags } from './flags.js';

/** Runs fn; a missing stock kernel is reported as such instead of failing the whole benchmark. */
async function measure(fn: () => Promise<number>): Promise<number | string> {
  try {
    return await fn();
  } catch (e) {
    const m = /Kernel '(\w+)' not registered/.exec(String((e as Error).message));
    if (m) return `missing kernel ${m[1]}`;
    throw e;
  }
}

export async function runChild(flags: EngineChildFlags): Promise<void> {
  const { threads, quick } = flags;
  const pack = flags.pack === 'on';
  if (flags.dataParallel) {
    console.log(JSON.stringify(await dataParallel(quick)));
    return;
  }
  const torch = flags.backend === 'torch';
  await initEngine({ backend: flags.backend, threads, kernelPack: true, log: false });
  if (!pack && !torch) unregisterKernelPack();
  const out: Record<string, number | string> = { backend: flags.backend, threads, pack: torch ? '-' : pack ? 'on' : 'off' };
  const slow = { warmup: 0, minReps: 1, maxReps: 1 };

  // conv 3x3 64->64 on 16x56x56: 2*N*H*W*Cin*Cout*9 FLOPs forward, 3x that with both gradients.
  {
    const x = tf.randomNormal([16, 56, 56, 64]) as tf.Tensor4D;
    const f = tf.randomNormal([3, 3, 64, 64], 0, 0.1) as tf.Tensor4D;
    const flops = 2 * 16 * 56 * 56 * 64 * 64 * 9;
    out.conv3x3FwdGflops = flops / 1e6 / (await timeMs(() => tf.tidy(() => {
      tf.conv2d(x, f, 1, 'same').dataSync();
    })));
    const g = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same')));
    out.conv3x3FwdBwdGflops = await measure(async () => (3 * flops) / 1e6 / (await timeMs(() => tf.tidy(() => g([x, f]).forEach((t) => t.dataSync())))));
    tf.dispose([x, f]);
  }
  // depthwise 3x3, 128 channels, 16x56x56, forward + both gradients
  {
    const x = tf.randomNormal([16, 56, 56, 128]) as tf.Tensor4D;
    const f = tf.randomNormal([3, 3, 128, 1]) as tf.Tensor4D;
    const g = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same')));
    out.depthwiseFwdBwdMs = await measure(() => timeMs(() => tf.tidy(() => g([x, f]).forEach((t) => t.dataSync()))));
    tf.dispose([x, f]);
  }
  // the head's matmul: [256,512] x [512,N] and its two gradients (transposed operands)
  {
    const n = quick ? 20000 : 100000;
    const a = tf.randomNormal([256, 512]) as tf.Tensor2D;
    const w = tf.randomNormal([512, n]) as tf.Tensor2D;
    const dc = tf.randomNormal([256, n]) as tf.Tensor2D;
    // never return a TypedArray from tf.tidy: it walks it element by element (seconds for millions)
    const flops = 2 * 256 * 512 * n;
    const opts = pack || torch ? {} : slow;
    out.matmulN = n;
    out.matmulGflops = flops / 1e6 / (await timeMs(() => tf.tidy(() => { tf.matMul(a, w).dataSync(); })));
    out.matmulGradAGflops = flops / 1e6 / (await timeMs(() => tf.tidy(() => { tf.matMul(a, dc, true, false).dataSync(); }), opts));
    out.matmulGradBGflops = flops / 1e6 / (await timeMs(() => tf.tidy(() => { tf.matMul(dc, w, false, true).dataSync(); }), opts));
    tf.dispose([a, w, dc]);
  }
  // full training steps at 112x112, batch 8
  if (pack || torch) {
    const { makeTrainStep } = await import('./step.js');
    for (const [key, name] of [['iresnet18', 'r18'], ['mbf', 'mbf']] as const) {
      const s = makeTrainStep(name, 112, 8);
      out[`${key}StepSeconds`] = (await timeMs(() => s.step(), { warmup: 1, minReps: quick ? 1 : 3, maxReps: quick ? 1 : 3 })) / 1000;
      s.dispose();
    }
    if (!quick) out.iresnet18Profile = await profileStep('r18');
  } else {
    out.iresnet18StepSeconds = 'missing kernel Conv2DBackpropFilter';
    out.mbfStepSeconds = 'missing kernel Conv2DBackpropFilter';
  }
  out.heapBytes = wasmHeapBytes();
  console.log(JSON.stringify(out));
  shutdownEngine();
}

/** Per-kernel time of one IResNet-18 step, the top entries as "Kernel ms; ...". */
async function profileStep(name: string): Promise<string> {
  const { makeTrainStep } = await import('./step.js');
  const s = makeTrainStep(name, 112, 8);
  s.step();
  const prof = await tf.profile(() => s.step());
  const byKernel = new Map<string, number>();
  for (const k of prof.kernels) byKernel.set(k.name, (byKernel.get(k.name) ?? 0) + (k.kernelTimeMs as number));
  s.dispose();
  return [...byKernel.entries()].sort((a, b) => b[1] - a[1]).slice(0, 10).map(([k, ms]) => `${k} ${Math.round(ms)}`).join('; ');
}

/**
 * Two worker threads, each with its own single-thread wasm instance, averaging gradients through shared
 * memory: at a global batch of 8 (4 per worker, like-for-like with the single-process b8 step) and 16.
 */
async function dataParallel(quick: boolean): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const [key, name] of [['iresnet18', 'r18'], ['mbf', 'mbf']] as const) {
    for (const perWorker of quick ? [4] : [4, 8]) {
      const steps = quick ? 2 : 3;
      const workers = [0, 1].map((rank) => new Worker(new URL('./dpWorker.mjs', import.meta.url), { workerData: { rank, name, steps, batch: perWorker, inputSize: 112 } }));
      const ctrl = new SharedArrayBuffer(16);
      const results = await new Promise<{ stepSeconds: number; exchangeSeconds: number }[]>((resolve, reject) => {
        const res: { stepSeconds: number; exchangeSeconds: number }[] = [];
        let sizes = 0;
        workers.forEach((w, i) => {
          w.on('error', reject);
          w.on('message', (m: { size?: number; stepSeconds?: number; exchangeSeconds?: number }) => {
            if (m.size !== undefined) {
              // both workers report their flat gradient size; then get one shared buffer with a slot each
              sizes++;
              if (sizes === 2) {
                const grads = new SharedArrayBuffer(m.size * 4 * 2);
                workers.forEach((x) => x.postMessage({ ctrl, grads }));
              }
            } else {
              res[i] = m as { stepSeconds: number; exchangeSeconds: number };
              if (res.filter(Boolean).length === 2) resolve(res);
            }
          });
        });
      });
      await Promise.all(workers.map((w) => w.terminate()));
      const step = Math.max(...results.map((r) => r.stepSeconds));
      const tag = `${key}B${2 * perWorker}`;
      out[`${tag}StepSeconds`] = step;
      out[`${tag}ExchangeSeconds`] = Math.max(...results.map((r) => r.exchangeSeconds));
      out[`${tag}ImagesPerSecond`] = (2 * perWorker) / step;
    }
  }
  return out;
}
