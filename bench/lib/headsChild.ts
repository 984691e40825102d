// One bench:heads configuration (head x N), run in its own process by bench/heads.ts: the WASM heap
// never shrinks and peak RSS is per process, so every configuration starts from a fresh one.
// Prints one JSON line (HeadRunResult) on stdout; progress goes to stderr.
import * as tf from '@tensorflow/tfjs-core';
import { initEngine, shutdownEngine, wasmHeapBytes } from '../../src/engine/index.js';
import { FullFcHead } from '../../src/heads/fullFc.js';
import { checkHostMemory, fullFcNativeStep } from '../../src/train/hostMemory.js';
import { PartialFcHead } from '../../src/heads/partialFc.js';
import { AttFcHead } from '../../src/heads/attfc/index.js';
import type { Head, SgdSettings } from '../../src/heads/types.js';
import { Sgd } from '../../src/train/sgd.js';
import { ClusteredEmbeddings } from './clusteredEmbeddings.js';
import { queueSizeOf, type HeadSpec } from './headSpecs.js';
import type { HeadsChildFlags } from './flags.js';

/** What a child reports; bench/heads.ts turns it into a row. */
export interface HeadRunResult {
  head: string;
  n: number;
  ok: boolean;
  /** Median of the timed steps (after one warm-up step). */
  stepMs: number | null;
  /** The first (warm-up) step, which also allocates. */
  warmupMs: number | null;
  /** Every timed step, in order. */
  stepsMs: number[];
  /**
   * Median process CPU time (user + system, all threads) of the timed steps: less sensitive than wall
   * time to other jobs competing for the cores.
   */
  cpuMs: number | null;
  /** Head construction: parameter initialisation / DCC randomisation and upload. */
  initMs: number | null;
  /** WASM heap size at the end; the heap never shrinks, so this is its peak. */
  heapBytes: number | null;
  /** Backend torch: libtorch memory held by tensors at the end (the head's tables and buffers). */
  nativeBytes: number | null;
  /** Peak resident set size of the process (getrusage maxrss). */
  rssBytes: number | null;
  /** Head parameters + optimizer state + buffers (FullFC: W plus the optimizer's momentum for W). */
  stateBytes: number | null;
  /** Loss of the last step (a sanity check that the step computed something finite). */
  loss: number | null;
  /** Tensors alive after the last step minus after the first one (> 0 means a leak). */
  tensorGrowth: number | null;
  /** AttFC's DCC size, Partial FC's centres in the last step. */
  detail: string;
  error: string | null;
  /**
   * AttFC on torch: the floating-point operations of the step's two DCC products (q K^T and the
   * gradient's P K: 2 x 2 B D S), and this process's sgemm rate right after the steps (best of 5
   * 2048 x 2048 x 2048 products through the same backend), so the step can be stated as a fraction of it.
   */
  dccFlops?: number;
  sgemmGflops?: number;
}

export interface HeadRunOptions {
  spec: HeadSpec;
  numClasses: number;
  batchSize: number;
  dim: number;
  /** Timed steps after the warm-up step. */
  steps: number;
  seed: number;
  threads?: number;
  /** The engine. */
  backend: 'wasm' | 'torch';
  /** AttFC: WASM bytes its DCC chunks may keep between steps (default: the head's own default). */
  deviceBudgetBytes?: number;
}

/** SGD settings of the reference recipe, for FullFC's optimizer and the heads' own updates. */
const SGD: SgdSettings = { lr: 0.1, momentum: 0.9, weightDecay: 5e-4 };

function createHead(spec: HeadSpec, o: HeadRunOptions): Head {
  const common = { numClasses: o.numClasses, embeddingSize: o.dim, seed: o.seed + 1 };
  if (spec.kind === 'fc') {
    // on torch nothing caps the tables but the machine: refuse what train() refuses, not an OOM kill
    if (o.backend === 'torch') checkHostMemory([{ ...fullFcNativeStep(o.numClasses, o.dim, o.batchSize, 'torch'), flags: '' }]);
    return new FullFcHead({ ...common, batchSize: o.batchSize });
  }
  if (spec.kind === 'pfc') return new PartialFcHead({ ...common, sampleRate: spec.sampleRate, batchSize: o.batchSize });
  return new AttFcHead({ ...common, batchSize: o.batchSize, sampleNum: 3, queueSize: queueSizeOf(spec, o.numClasses, o.batchSize), deviceBudgetBytes: o.deviceBudgetBytes });
}

function errorText(e: unknown): string {
  if (e instanceof Error) return `${e.name}: ${e.message.split('\n')[0]}`;
  return String(e);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Builds the head and times warm-up + `steps` full head steps; errors become { ok: false, error }. */
export async function runHeadConfig(o: HeadRunOptions): Promise<HeadRunResult> {
  const { spec, numClasses: n, batchSize: B, dim: D } = o;
  const log = (s: string) => process.stderr.write(`[${spec.id} N=${n}] ${s}\n`);
  const res: HeadRunResult = {
    head: spec.id, n, ok: false, stepMs: null, warmupMs: null, stepsMs: [], cpuMs: null, initMs: null,
    heapBytes: null, nativeBytes: null, rssBytes: null, stateBytes: null, loss: null, tensorGrowth: null, detail: '', error: null,
  };
  let head: Head | null = null;
  let sgd: Sgd | null = null;
  const keep: tf.Tensor[] = [];
  try {
    const keysPerSample = spec.kind === 'attfc' ? 2 : 0; // K = 3
    const gen = new ClusteredEmbeddings({ numClasses: n, dim: D, seed: o.seed });
    const t0 = performance.now();
    head = createHead(spec, o);
    const trainVars = head.trainableVariables();
    if (trainVars.length) sgd = new Sgd(trainVars, { momentum: SGD.momentum, weightDecay: SGD.weightDecay });
    res.initMs = performance.now() - t0;
    if (head instanceof AttFcHead) res.detail = `S=${head.queueSize}`;
    log(`head ready in ${(res.initMs / 1000).toFixed(1)} s`);

    // The backbone's output stands in as a variable so that the gradient w.r.t. the embeddings is taken.
    const emb = tf.variable(tf.zeros([B, D]), true, 'bench/embeddings') as tf.Variable<tf.Rank.R2>;
    keep.push(emb);
    let keys: tf.Tensor2D | undefined;
    let tensorsAfterFirst = 0;
    const cpuMs: number[] = [];
    for (let s = 0; s <= o.steps; s++) {
      // untimed: generate and upload the batch
      const batch = gen.batch(B, keysPerSample);
      tf.tidy(() => emb.assign(tf.tensor2d(batch.embeddings, [B, D])));
      keys?.dispose();
      keys = keysPerSample ? tf.tensor2d(batch.keys, [B * keysPerSample, D]) : undefined;

      const t = performance.now();
      const cpu0 = process.cpuUsage();
      head.prepare(batch.labels);
      const stepVars = head.stepVariables();
      const { value, grads } = tf.variableGrads(
        () => head!.loss({ embeddings: emb, labels: batch.labels, keyEmbeddings: keys }),
        [emb, ...trainVars, ...stepVars],
      );
      res.loss = value.dataSync()[0];
      sgd?.step(trainVars.map((v) => grads[v.name]), SGD.lr);
      head.afterStep(stepVars.map((v) => grads[v.name]), SGD);
      tf.dispose([value, ...Object.values(grads)]);
      const ms = performance.now() - t;
      const cpu = process.cpuUsage(cpu0);

      if (s === 0) {
        res.warmupMs = ms;
        tensorsAfterFirst = tf.memory().numTensors;
      } else {
        res.stepsMs.push(ms);
        cpuMs.push((cpu.user + cpu.system) / 1000);
      }
      log(`step ${s === 0 ? 'warm-up' : s}: ${(ms / 1000).toFixed(2)} s, loss ${res.loss.toFixed(3)}, ${o.backend === 'torch' ? `libtorch ${(nativeBytes() / 2 ** 30).toFixed(2)} GiB` : `heap ${(wasmHeapBytes() / 2 ** 30).toFixed(2)} GiB`}`);
    }
    keys?.dispose();
    res.tensorGrowth = tf.memory().numTensors - tensorsAfterFirst;
    if (res.tensorGrowth > 0) log(`WARNING: ${res.tensorGrowth} tensors leaked over ${o.steps} steps`);
    const diag = head.diagnostics();
    if (diag.sampledClasses !== undefined) res.detail = `${diag.sampledClasses} centres/step`;
    res.stepMs = res.stepsMs.length ? median(res.stepsMs) : res.warmupMs;
    res.cpuMs = cpuMs.length ? median(cpuMs) : null;
    // FullFC: W on the heap plus the optimizer's momentum slot (sgd.stateBytes()); the others keep
    // their parameters/buffers (and Partial FC its momentum) themselves.
    res.stateBytes = head instanceof FullFcHead ? head.weight.size * 4 + (sgd?.stateBytes() ?? 0) : head.stateBytes();
    res.ok = Number.isFinite(res.loss);
    if (!res.ok) res.error = `loss is ${res.loss}`;
    if (o.backend === 'torch' && head instanceof AttFcHead) {
      res.dccFlops = 2 * 2 * B * D * head.queueSize;
      res.sgemmGflops = sgemmGflops();
      log(`sgemm ${res.sgemmGflops.toFixed(1)} GFLOPS (2048^3, best of 5)`);
    }
  } catch (e) {
    res.error = errorText(e);
    log(`failed: ${res.error}`);
  } finally {
    res.heapBytes = wasmHeapBytes();
    res.nativeBytes = o.backend === 'torch' ? nativeBytes() : null;
    res.rssBytes = process.resourceUsage().maxRSS * 1024;
    try {
      sgd?.dispose();
      head?.dispose();
      tf.dispose(keep);
    } catch {
      /* a failed run may leave the engine unusable; the process ends next */
    }
  }
  return res;
}

/** GFLOPS of the best of five 2048 x 2048 x 2048 float32 products on the current backend. */
function sgemmGflops(): number {
  const n = 2048;
  const [a, b] = [tf.randomNormal([n, n], 0, 1, 'float32', 1), tf.randomNormal([n, n], 0, 1, 'float32', 2)];
  let best = Infinity;
  for (let i = 0; i < 6; i++) {
    const t = performance.now();
    tf.tidy(() => {
      tf.matMul(a, b).dataSync();
    });
    if (i > 0) best = Math.min(best, performance.now() - t);
  }
  tf.dispose([a, b]);
  return (2 * n ** 3) / (best / 1000) / 1e9;
}

/** libtorch memory held by tensors right now (0 on other backends). */
function nativeBytes(): number {
  return (tf.memory() as { numBytesInTorch?: number }).numBytesInTorch ?? 0;
}

/** Entry point of the child process: `--head id --n N --batch B --dim D --steps k --seed s [--threads t]`. */
export async function runChild(flags: HeadsChildFlags): Promise<void> {
  const opts: HeadRunOptions = {
    spec: flags.head,
    numClasses: flags.n,
    batchSize: flags.batch,
    dim: flags.dim,
    steps: flags.steps,
    seed: flags.seed,
    deviceBudgetBytes: flags.deviceBudget === undefined ? undefined : Number(flags.deviceBudget) * 2 ** 30,
    threads: flags.threads,
    backend: flags.backend,
  };
  await initEngine({ backend: opts.backend, threads: opts.threads, log: (line) => process.stderr.write(line + '\n') });
  const res = await runHeadConfig(opts);
  process.stdout.write(JSON.stringify(res) + '\n');
  shutdownEngine();
}
