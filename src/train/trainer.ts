// The training loop: data pipeline -> f_q (and, for AttFC, the EMA class encoder f_k) -> head -> backward
// -> clip -> SGD, with metrics, in-training verification, atomic checkpoints, exact resume and export.
import * as tf from '@tensorflow/tfjs-core';
import { EventEmitter } from 'node:events';
import { mkdirSync, renameSync, writeFileSync, appendFileSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { initEngine, engineInfo, wasmHeapBytes, formatBytes } from '../engine/index.js';
import { createBackbone, saveEmbeddingModel, INPUT_NORMALIZATION, type Backbone } from '../backbones/index.js';
import { openDataset } from '../data/dataset.js';
import { DataPipeline, type PipelineState } from '../data/pipeline.js';
import { FullFcHead, estimateFullFcHeap } from '../heads/fullFc.js';
import { PartialFcHead, estimatePartialFcHeap, partialFcSampleSize } from '../heads/partialFc.js';
import { AttFcHead, ClassEncoder, defaultQueueSize, estimateDeviceBytes, DEFAULT_CHUNK_SLOTS, DEFAULT_DEVICE_BUDGET_BYTES } from '../heads/attfc/index.js';
import type { Head } from '../heads/types.js';
import { evaluateBin, formatVerificationLine, type VerificationResult } from '../eval/evaluateBin.js';
import { readVerificationBin, type VerificationSet } from '../eval/binReader.js';
import { AttfcError } from '../errors.js';
import { parseTrainConfig, resumedTrainConfig, marginOptions, type TrainConfig, type TrainConfigInput } from './config.js';
import { learningRate } from './schedule.js';
import { Sgd, clipByGlobalNorm } from './sgd.js';
import { saveCheckpoint, loadCheckpoint, resolveCheckpoint, type ArrayEntry } from './checkpoint.js';
import { estimateTrainingHeap, describeHeapEstimate, largestFittingRows } from './memoryEstimate.js';
import { ReplicaGroup } from './dataParallel/replicaGroup.js';
import { initBackboneFrom, withInitArchitecture } from './initFrom.js';
import { backboneToOnnx } from '../onnx/writer.js';
import { splitRows } from './dataParallel/shared.js';

export interface StepMetrics {
  step: number;
  totalSteps: number;
  epoch: number;
  loss: number;
  lr: number;
  gradNorm: number;
  samplesPerSec: number;
  dataWaitShare: number;
  /** WASM heap size (its high-water mark); with data-parallel replicas, the largest of their heaps. */
  heapBytes: number;
  etaSec: number;
  head: Record<string, number>;
}

export interface VerifyEvent {
  step: number;
  results: VerificationResult[];
}

export interface TrainResult {
  steps: number;
  /** Steps run by this call (fewer than `steps` after a resume). */
  stepsThisRun: number;
  seconds: number;
  samplesPerSec: number;
  finalLoss: number;
  identities: number;
  images: number;
  verification: VerificationResult[];
  output: string;
  modelDir: string | null;
  checkpoint: string | null;
  /** True when stop() ended training early (a checkpoint was still written). */
  interrupted: boolean;
}

export interface TrainOptions {
  /** Continue from a checkpoint folder (or a run's output folder: its newest checkpoint). */
  resume?: string;
  /** Where human-readable lines go (default stderr). */
  log?: (line: string) => void;
}

/** What train() returns: progress events plus a promise of the result. */
export interface TrainHandle extends EventEmitter {
  readonly done: Promise<TrainResult>;
  /** Finish the current step, write a checkpoint and end (what Ctrl-C does). */
  stop(): void;
  on(event: 'step', listener: (m: StepMetrics) => void): this;
  on(event: 'verify', listener: (e: VerifyEvent) => void): this;
  on(event: 'checkpoint', listener: (e: { step: number; path: string }) => void): this;
  on(event: 'log', listener: (line: string) => void): this;
  on(event: string, listener: (...args: never[]) => void): this;
}

/**
 * Starts training. `config` is validated like the CLI's (one-line errors naming the key). With
 * `options.resume` the run continues with the configuration saved in the checkpoint; `config` may then
 * be null or hold only keys to change, which must be among RESUME_MUTABLE_KEYS (others are refused
 * unless equal to the saved value).
 */
export function train(config: TrainConfigInput | Partial<TrainConfigInput> | null, options: TrainOptions = {}): TrainHandle {
  const emitter = new EventEmitter() as TrainHandle & { done: Promise<TrainResult> };
  let stopRequested = false;
  (emitter as { stop: () => void }).stop = () => {
    stopRequested = true;
  };
  const log = (line: string) => {
    emitter.emit('log', line);
    (options.log ?? ((l: string) => process.stderr.write(l + '\n')))(line);
  };
  // Defer the start so callers can attach listeners first.
  (emitter as { done: Promise<TrainResult> }).done = new Promise<void>((r) => setImmediate(r)).then(() =>
    new Trainer(config, options, emitter, log, () => stopRequested).run(),
  );
  return emitter;
}

/** Variables of a backbone as checkpoint arrays, keyed `${prefix}/${name}`. */
function dumpVariables(prefix: string, net: Backbone, into: Record<string, ArrayEntry>): void {
  for (const v of net.variables()) into[`${prefix}/${v.name}`] = v.variable.dataSync().slice() as Float32Array;
}

function restoreVariables(prefix: string, net: Backbone, from: Record<string, ArrayEntry>, where: string): void {
  for (const v of net.variables()) {
    const arr = from[`${prefix}/${v.name}`];
    if (!arr || arr.length !== v.variable.size)
      throw new AttfcError(`${where}: ${prefix}/${v.name} is missing or has ${arr?.length ?? 0} values, expected ${v.variable.size} (was the checkpoint made with another backbone or size?)`);
    v.variable.assign(tf.tensor(arr, v.variable.shape, v.variable.dtype));
  }
}

class Trainer {
  private config!: TrainConfig;

  constructor(
    private readonly raw: Partial<TrainConfigInput> | null,
    private readonly options: TrainOptions,
    private readonly events: EventEmitter,
    private readonly log: (line: string) => void,
    private readonly stopRequested: () => boolean,
  ) {}

  async run(): Promise<TrainResult> {
    let resumed: ReturnType<typeof loadCheckpoint> | null = null;
    let resumedFrom = '';
    if (this.options.resume) {
      resumedFrom = resolveCheckpoint(this.options.resume);
      resumed = loadCheckpoint(resumedFrom);
      // The run continues with the configuration it was started with; `raw` may change only the keys
      // that do not alter the training (RESUME_MUTABLE_KEYS). Outputs go to the checkpoint's run folder
      // unless `output` is given, so a moved or copied run keeps writing next to its checkpoints.
      const runDir = path.basename(path.dirname(resumedFrom)) === 'checkpoints' ? path.dirname(path.dirname(resumedFrom)) : undefined;
      this.config = resumedTrainConfig(
        runDir && this.raw?.output === undefined ? { ...(resumed.json.config as object), output: runDir } : resumed.json.config,
        this.raw,
        resumedFrom,
      );
    } else {
      this.config = parseTrainConfig(withInitArchitecture(this.raw ?? {}));
    }
    const c = this.config;
    const plan = planParallelism(c);
    const engine = await initEngine(plan.replicas > 1 ? { threads: 1 } : {});
    if (plan.replicas > 1 && engine.backend !== 'wasm') {
      if (c.parallel === 'data') throw new AttfcError(`parallel = "data" needs the wasm backend, but the backend is ${engine.backend}; use parallel "threads"`);
      plan.replicas = 1;
      plan.reason = `backend ${engine.backend}`;
    }
    const replicas = plan.replicas;
    const localBatch = splitRows(c.batchSize, replicas)[0][1];
    const dataset = openDataset(c.data);
    const numClasses = dataset.numIdentities;
    const numImages = dataset.numImages;
    dataset.close();
    if (numImages < c.batchSize)
      throw new AttfcError(`${c.data}: ${numImages} images is fewer than one batch (batchSize ${c.batchSize})`);
    const stepsPerEpoch = Math.floor(numImages / c.batchSize);
    const totalSteps = c.steps ?? Math.max(1, Math.round(c.epochs * stepsPerEpoch));
    const keysPerSample = c.head === 'attfc' ? c.sampleNum - 1 : 0;

    const backboneOptions = { inputSize: c.inputSize, widthMultiplier: c.widthMultiplier, embeddingSize: c.embeddingSize, dropout: c.dropout, seed: c.seed, ...(c.mbfScale !== undefined ? { mbfScale: c.mbfScale } : {}) };
    const margin = marginOptions(c);
    // Head sizes first: their errors (queue size, FC too large) are cheaper than building the backbone.
    let queueSize = 0;
    if (c.head === 'attfc') {
      queueSize = c.queueSize ?? defaultQueueSize(numClasses, c.batchSize, c.queueRatio);
      if (queueSize <= 0)
        throw new AttfcError(`queueRatio ${c.queueRatio} of ${numClasses} identities is less than one batch (${c.batchSize}); raise queueRatio or set queueSize`);
    }
    const headHeap =
      c.head === 'fc'
        ? estimateFullFcHeap(numClasses, c.embeddingSize, c.batchSize).total
        : c.head === 'pfc'
          ? estimatePartialFcHeap(partialFcSampleSize(numClasses, c.sampleRate, c.batchSize), c.embeddingSize, c.batchSize)
          : 0; // AttFC: sized below from what the backbone leaves

    const fq = createBackbone(c.backbone, backboneOptions);
    let deviceBudget = DEFAULT_DEVICE_BUDGET_BYTES;
    if (engine.backend === 'wasm') {
      let est = await estimateTrainingHeap({ backbone: c.backbone, backboneOptions, paramCount: fq.paramCount(), batchSize: localBatch, keyImages: keysPerSample * localBatch, headBytes: headHeap });
      if (c.head === 'attfc') {
        // AttFC's DCC chunks may keep what the backbone leaves of 85% of the heap on the device: every
        // chunk kept (and kept packed) saves an upload (and XNNPACK's packing) per step
        const temporaries = estimateDeviceBytes(queueSize, c.embeddingSize, c.batchSize, DEFAULT_CHUNK_SLOTS, 0);
        deviceBudget = Math.max(0, 0.85 * est.limit - est.total - temporaries);
        const head = estimateDeviceBytes(queueSize, c.embeddingSize, c.batchSize, DEFAULT_CHUNK_SLOTS, deviceBudget);
        est = { ...est, head, total: est.total + head };
      }
      this.log(`attfc: estimated WASM heap: ${describeHeapEstimate(est)}`);
      if (est.total > est.limit * 0.95) {
        fq.dispose();
        // AttFC's device budget is optional; only its per-step temporaries must fit
        const requiredHead = c.head === 'attfc' ? estimateDeviceBytes(queueSize, c.embeddingSize, c.batchSize, DEFAULT_CHUNK_SLOTS, 0) : headHeap;
        const rows = largestFittingRows(est, requiredHead);
        const minRows = replicas > 1 ? 2 : 1;
        const fits =
          rows >= minRows
            ? `the largest batch that fits is about ${rows * replicas}${replicas > 1 ? ` (${rows} rows on each of ${replicas} replicas)` : ''}`
            : 'no batch fits at this input size and width';
        throw new AttfcError(
          `this configuration needs about ${formatBytes(est.total)} of WASM heap but at most ${formatBytes(est.limit)} exists ` +
            `(${describeHeapEstimate(est)}); ${fits}: reduce --batch-size (now ${c.batchSize}${replicas > 1 ? `, ${localBatch} rows on this replica` : ''}), --input-size (${c.inputSize}) or --width, ` +
            `or use a smaller backbone`,
        );
      }
    }

    // before f_k exists: the class encoder starts as a copy of f_q (a resume restores both instead)
    if (c.initFrom && !resumed) for (const line of await initBackboneFrom(c.initFrom, fq, c.data)) this.log(line);

    let fk: Backbone | null = null;
    let encoder: ClassEncoder | null = null;
    let head: Head;
    if (c.head === 'fc') head = new FullFcHead({ numClasses, embeddingSize: c.embeddingSize, margin, seed: c.seed + 1, batchSize: c.batchSize });
    else if (c.head === 'pfc') head = new PartialFcHead({ numClasses, embeddingSize: c.embeddingSize, sampleRate: c.sampleRate, margin, seed: c.seed + 1, batchSize: c.batchSize });
    else {
      fk = createBackbone(c.backbone, backboneOptions);
      encoder = new ClassEncoder(fq, fk, c.emaMomentum);
      head = new AttFcHead({
        numClasses,
        embeddingSize: c.embeddingSize,
        batchSize: c.batchSize,
        sampleNum: c.sampleNum,
        queueSize,
        attention: c.attention,
        temperature: c.temperature,
        masking: c.masking,
        deviceBudgetBytes: deviceBudget,
        margin,
        seed: c.seed + 1,
      });
    }
    const backboneVars = fq.trainableVariables();
    const sgdVars = [...backboneVars, ...head.trainableVariables()];
    const sgd = new Sgd(sgdVars, { momentum: c.momentum, weightDecay: c.weightDecay });
    const pipeline = new DataPipeline({
      dataset: c.data,
      batchSize: c.batchSize,
      sampleNum: keysPerSample + 1,
      inputSize: c.inputSize,
      seed: c.seed,
      workers: c.workers,
      prefetch: c.prefetch,
      maxBadShare: c.maxBadShare,
      onWarning: (m) => this.log(`attfc: warning: ${m}`),
    });

    const out = path.resolve(c.output);
    const ckptRoot = path.join(out, 'checkpoints');
    mkdirSync(out, { recursive: true });
    const metricsPath = path.join(out, 'metrics.jsonl');
    let step = 0;
    if (resumed) {
      const where = resumedFrom;
      restoreVariables('fq', fq, resumed.arrays, where);
      if (fk) restoreVariables('fk', fk, resumed.arrays, where);
      sgd.momentumBuffers().forEach((m, i) => {
        const arr = resumed!.arrays[`opt/${i}`];
        if (!arr || arr.length !== m.size) throw new AttfcError(`${where}: optimizer state opt/${i} is missing or has the wrong size`);
        m.assign(tf.tensor(arr, m.shape));
      });
      const headArrays: Record<string, Float32Array | Int32Array> = {};
      for (const [k, v] of Object.entries(resumed.arrays)) if (k.startsWith('head/')) headArrays[k.slice(5)] = v;
      head.setState({ arrays: headArrays, json: resumed.json.head as Record<string, unknown> });
      pipeline.setState(resumed.json.pipeline as PipelineState);
      step = resumed.step;
      this.log(`attfc: resumed from ${where} at step ${step}`);
    } else {
      writeFileSync(path.join(out, 'config.json'), JSON.stringify(c, null, 2) + '\n');
      writeFileSync(metricsPath, '');
    }
    let group: ReplicaGroup | null = null;
    if (replicas > 1) {
      // after any restore: the workers start from rank 0's (possibly resumed) weights
      group = await ReplicaGroup.start({ replicas, batchSize: c.batchSize, keysPerSample, backbone: c.backbone, backboneOptions, fq, fk, emaMomentum: encoder ? c.emaMomentum : null });
      this.log(`attfc: data-parallel: ${replicas} replicas x 1 WASM thread, batch ${c.batchSize} = ${group.rows.map(([a, b]) => b - a).join(' + ')} rows (each replica's batch norm uses its own rows)`);
    } else if (engine.backend === 'wasm' && plan.reason) {
      this.log(`attfc: one WASM instance with ${engine.threads} thread${engine.threads === 1 ? '' : 's'} (not data-parallel: ${plan.reason})`);
    }
    writeFileSync(
      path.join(out, 'environment.json'),
      JSON.stringify({ engine: engineInfo(), parallel: { mode: replicas > 1 ? 'data' : 'threads', replicas }, node: process.version, platform: `${os.platform()} ${os.arch()}`, cpu: os.cpus()[0]?.model, cores: os.cpus().length, memBytes: os.totalmem(), attfc: pkgVersion(), startedAt: new Date().toISOString(), resumedFrom: resumedFrom || undefined }, null, 2) + '\n',
    );
    this.log(
      `attfc: training ${c.backbone} (${(fq.paramCount() / 1e6).toFixed(2)}M params, ${c.inputSize}x${c.inputSize}) with head ${c.head} on ${numClasses} identities / ${numImages} images; ` +
        `${totalSteps} steps of batch ${c.batchSize}${c.head === 'attfc' ? `, K=${c.sampleNum}, DCC ${queueSize} slots` : ''}${c.head === 'pfc' ? `, sample rate ${c.sampleRate}` : ''}`,
    );

    const verifySets: VerificationSet[] = c.verify.map((p) => readVerificationBin(p));
    const embedder = { inputSize: c.inputSize, embed: (x: tf.Tensor4D) => fq.apply(x, false) };
    const verification: VerificationResult[] = [];
    const runVerification = async (atStep: number) => {
      const results: VerificationResult[] = [];
      for (const set of verifySets) {
        const r = await evaluateBin(embedder, set, { batchSize: Math.min(64, c.batchSize) });
        results.push(r);
        this.log(formatVerificationLine(r.name, atStep, r));
        appendFileSync(metricsPath, JSON.stringify({ step: atStep, verify: r.name, accuracy: r.accuracy, std: r.std, xnorm: r.xnorm, tarAtFar1e3: r.tarAtFar1e3 }) + '\n');
      }
      verification.splice(0, verification.length, ...results);
      this.events.emit('verify', { step: atStep, results });
    };

    let lastCheckpoint: string | null = resumed ? resumedFrom : null;
    const writeCheckpoint = () => {
      const arrays: Record<string, ArrayEntry> = {};
      dumpVariables('fq', fq, arrays);
      if (fk) dumpVariables('fk', fk, arrays);
      sgd.momentumBuffers().forEach((m, i) => (arrays[`opt/${i}`] = m.dataSync().slice() as Float32Array));
      const hs = head.getState();
      for (const [k, v] of Object.entries(hs.arrays)) arrays[`head/${k}`] = v;
      const p = saveCheckpoint(ckptRoot, { step, arrays, json: { config: c, head: hs.json, pipeline: pipeline.getState(), savedAt: new Date().toISOString() } }, c.keepCheckpoints);
      lastCheckpoint = p;
      this.events.emit('checkpoint', { step, path: p });
      return p;
    };

    const startStep = step;
    const t0 = performance.now();
    let finalLoss = NaN;
    let interrupted = false;
    let windowStart = performance.now();
    let windowSteps = 0;
    let waitBefore = pipeline.stats().waitMs;
    try {
      while (step < totalSteps) {
        // A prefetched batch resolves as a microtask, so without this the loop would never give the
        // event loop a turn: Ctrl-C (SIGINT) and worker messages would wait for the pipeline to run dry.
        await new Promise<void>((r) => setImmediate(r));
        if (this.stopRequested()) {
          interrupted = true;
          break;
        }
        const batch = await pipeline.next();
        const lr = learningRate(step, { lr: c.lr, totalSteps, schedule: c.schedule, warmupSteps: c.warmupSteps, polyPower: c.polyPower, minLr: 0 });
        const labels = batch.labels;
        // rank 0 computes rows [0, localBatch); with replicas, the others go to the workers
        group?.postStep(batch.images, encoder ? batch.keys : null);
        const px = c.inputSize * c.inputSize * 3;
        const x = tf.tensor4d(batch.images.subarray(0, localBatch * px), [localBatch, c.inputSize, c.inputSize, 3]);
        let keyEmb: tf.Tensor2D | undefined;
        if (encoder) {
          // EMA first, then the key forward with the updated class encoder (outside any gradient tape).
          encoder.update();
          const n = localBatch * keysPerSample;
          keyEmb = tf.tidy(() => encoder!.embed(tf.tensor4d(batch.keys.subarray(0, n * px), [n, c.inputSize, c.inputSize, 3])));
          if (group) keyEmb = group.gatherKeyEmbeddings(keyEmb);
        }
        head.prepare(labels);
        const stepVars = head.stepVariables();
        const gradVars = [...sgdVars, ...stepVars];
        const { value, grads } = tf.variableGrads(() => {
          const local = fq.apply(x, true);
          const embeddings = group ? group.joinEmbeddings(local) : local;
          return head.loss({ embeddings, labels, keyEmbeddings: keyEmb, keyQuality: batch.keyQuality });
        }, gradVars);
        const loss = value.dataSync()[0];
        value.dispose();
        x.dispose();
        keyEmb?.dispose();
        if (!Number.isFinite(loss)) {
          tf.dispose(Object.values(grads));
          throw new AttfcError(
            `loss is ${loss} at step ${step + 1} (lr ${lr.toExponential(3)}): training diverged; the last good checkpoint is ${lastCheckpoint ?? '(none yet)'}; lower --lr or add --warmup-steps`,
          );
        }
        const summed = group ? group.addRemoteGradients(backboneVars.map((v) => grads[v.name])) : null;
        const clipped = clipByGlobalNorm(summed ?? backboneVars.map((v) => grads[v.name]), c.clipNorm);
        sgd.step([...clipped.grads, ...head.trainableVariables().map((v) => grads[v.name])], lr);
        head.afterStep(stepVars.map((v) => grads[v.name]), { lr, momentum: c.momentum, weightDecay: c.weightDecay });
        tf.dispose([...clipped.grads, ...Object.values(grads), ...(summed ?? [])]);
        group?.broadcastParameters();
        step++;
        windowSteps++;
        finalLoss = loss;

        const now = performance.now();
        const stats = pipeline.stats();
        const elapsed = (now - windowStart) / 1000;
        const sps = (windowSteps * c.batchSize) / Math.max(elapsed, 1e-9);
        const m: StepMetrics = {
          step,
          totalSteps,
          epoch: batch.epoch,
          loss,
          lr,
          gradNorm: clipped.norm,
          samplesPerSec: sps,
          dataWaitShare: Math.min(1, (stats.waitMs - waitBefore) / Math.max(1, now - windowStart)),
          // every replica has its own heap; report the fullest (usually rank 0, which also holds the head)
          heapBytes: Math.max(wasmHeapBytes(), group?.largestWorkerHeapBytes() ?? 0),
          etaSec: ((totalSteps - step) * c.batchSize) / Math.max(sps, 1e-9),
          head: head.diagnostics(),
        };
        this.events.emit('step', m);
        if (step % c.logEvery === 0 || step === totalSteps) {
          appendFileSync(metricsPath, JSON.stringify({ step, epoch: m.epoch, loss, lr, gradNorm: m.gradNorm, samplesPerSec: sps, dataWaitShare: m.dataWaitShare, heapBytes: m.heapBytes, badImages: stats.badImages, ...prefixKeys('head.', m.head) }) + '\n');
          windowStart = now;
          windowSteps = 0;
          waitBefore = stats.waitMs;
        }
        if (c.verifyEvery > 0 && step % c.verifyEvery === 0 && step < totalSteps && verifySets.length) await runVerification(step);
        if (c.checkpointEvery > 0 && step % c.checkpointEvery === 0 && step < totalSteps) writeCheckpoint();
      }
      const ckpt = writeCheckpoint();
      this.log(`attfc: checkpoint ${ckpt}`);
      if (!interrupted && verifySets.length) await runVerification(step);
      let modelDir: string | null = null;
      if (c.export && !interrupted) {
        modelDir = path.join(out, 'model');
        const tmp = `${modelDir}.tmp-${process.pid}`;
        await saveEmbeddingModel(fq, tmp, {
          inputSize: c.inputSize,
          normalization: INPUT_NORMALIZATION,
          backbone: c.backbone,
          widthMultiplier: c.widthMultiplier,
          embeddingSize: c.embeddingSize,
          ...(c.initFrom ? { initFrom: c.initFrom } : {}),
          head: c.head,
          steps: step,
          trainedOn: c.data,
        });
        if (c.export === 'onnx') writeFileSync(path.join(tmp, 'model.onnx'), backboneToOnnx(fq, { producerVersion: pkgVersion() }));
        replaceDir(tmp, modelDir);
        this.log(`attfc: exported f_q as a TensorFlow.js model${c.export === 'onnx' ? ' and model.onnx' : ''} to ${modelDir}`);
      }
      const seconds = (performance.now() - t0) / 1000;
      return {
        steps: step,
        stepsThisRun: step - startStep,
        seconds,
        samplesPerSec: ((step - startStep) * c.batchSize) / Math.max(seconds, 1e-9),
        finalLoss,
        identities: numClasses,
        images: numImages,
        verification,
        output: out,
        modelDir,
        checkpoint: ckpt,
        interrupted,
      };
    } finally {
      await group?.close();
      await pipeline.close();
      sgd.dispose();
      head.dispose();
      fq.dispose();
      fk?.dispose();
    }
  }
}

/**
 * Replicas for this run and, when there is only one on WASM, why. 'auto' takes data parallelism only
 * when the trainer is the one choosing the engine (a caller that initialised it keeps its choice).
 */
function planParallelism(c: TrainConfig): { replicas: number; reason: string } {
  const cores = os.cpus().length;
  const replicas = c.replicas ?? Math.max(2, cores);
  const fits = c.batchSize >= 2 * replicas;
  if (c.parallel === 'data') {
    if (!fits) throw new AttfcError(`parallel = "data" with ${replicas} replicas needs batchSize >= ${2 * replicas} (2 rows per replica for batch norm), got ${c.batchSize}`);
    return { replicas, reason: '' };
  }
  if (c.parallel === 'threads') return { replicas: 1, reason: 'parallel = "threads"' };
  if (engineInfo()) return { replicas: 1, reason: 'the engine was initialised before train()' };
  if (process.env.ATTFC_THREADS) return { replicas: 1, reason: `ATTFC_THREADS=${process.env.ATTFC_THREADS} (--threads) was given` };
  if (cores < 2 && c.replicas === undefined) return { replicas: 1, reason: 'one core' };
  if (!fits) return { replicas: 1, reason: `batch ${c.batchSize} is too small for ${replicas} replicas of at least 2 rows` };
  return { replicas, reason: '' };
}

function prefixKeys(prefix: string, o: Record<string, number>): Record<string, number> {
  const r: Record<string, number> = {};
  for (const [k, v] of Object.entries(o)) r[prefix + k] = v;
  return r;
}

function replaceDir(tmp: string, final: string): void {
  const old = `${final}.old-${process.pid}`;
  try {
    renameSync(final, old);
  } catch {
    /* no previous export */
  }
  renameSync(tmp, final);
  rmSync(old, { recursive: true, force: true });
}

function pkgVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}
