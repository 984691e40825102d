// The trainer: plans the run and takes its folder (locked; a fresh run refuses one that holds another
// run, a resume of a finished run stops there), checks that the configuration fits in memory, builds
// what a run needs (f_q, head, optimizer, data pipeline, checkpoints, replicas, callbacks), restores a
// checkpoint when resuming, then runs the loop: batch -> learning rate -> one step -> callbacks. Each
// concern lives in the module named for it.
import { EventEmitter } from 'node:events';
import path from 'node:path';
import { createBackbone } from '../backbones/index.js';
import { DataPipeline } from '../data/pipeline.js';
import type { TrainConfigInput } from './config.js';
import { learningRate } from './schedule.js';
import { AttfcError } from '../errors.js';
import { planRun, backboneOptions, type RunPlan } from './runPlan.js';
import { sizeHead, createHead } from './headFactory.js';
import { planHeap } from './heapPlan.js';
import { checkBackboneSize, checkHostMemory, hostParts } from './hostMemory.js';
import { RunFolder } from './runFolder.js';
import { CheckpointPolicy, type CheckpointedState } from './checkpointPolicy.js';
import { splitRows, type RankRandomState } from './dataParallel/shared.js';
import type { DatasetFingerprint } from '../data/fingerprint.js';
import { startReplicas } from './replicas.js';
import { resumeNotes } from './resumeNotes.js';
import { VerificationCallback } from './verificationCallback.js';
import { MetricsCallback } from './metricsCallback.js';
import { TrainStep, createOptimizer } from './trainStep.js';
import { exportEmbeddingModel } from './exportModel.js';
import { writeSyntheticVerificationBin } from '../data/synthetic/synthesize.js';
import type { ResolvedSynthOptions } from '../data/synthetic/options.js';
import { initBackboneFrom } from './initFrom.js';
import type { TrainHandle, TrainOptions, TrainResult } from './events.js';

export type { StepMetrics, VerifyEvent, TrainResult, TrainOptions, TrainHandle } from './events.js';

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
    runTraining(config, options, emitter, log, () => stopRequested),
  );
  return emitter;
}

async function runTraining(
  raw: Partial<TrainConfigInput> | null,
  options: TrainOptions,
  events: EventEmitter,
  log: (line: string) => void,
  stopRequested: () => boolean,
): Promise<TrainResult> {
  const plan = await planRun(raw, options.resume, options.allowDataChange ?? false);
  if (options.dryRun) return dryRun(plan, log);
  const c = plan.config;
  const { totalSteps } = plan;
  const folder = RunFolder.open(c.output);
  try {
    if (plan.resumed) {
      const { from, checkpoint } = plan.resumed;
      if (checkpoint.step >= totalSteps) {
        log(`attfc: ${from} is the end of a finished run (step ${checkpoint.step} of ${totalSteps}); nothing to train, nothing written`);
        return finishedResult(plan, folder.dir, from);
      }
      // continuing into another folder: it must not hold a different run
      if (runFolderOf(from) !== folder.dir) folder.prepareFresh(options.overwrite ?? false, '');
    } else folder.prepareFresh(options.overwrite ?? false, `pass --resume ${c.output} to continue it, `);
    return await trainInFolder(plan, folder, events, log, stopRequested);
  } finally {
    folder.close();
  }
}

/** The run folder a checkpoint belongs to (<run>/checkpoints/ckpt-<step>), or null for a loose checkpoint. */
function runFolderOf(checkpointDir: string): string | null {
  const parent = path.dirname(path.resolve(checkpointDir));
  return path.basename(parent) === 'checkpoints' ? path.dirname(parent) : null;
}

/** The result of a call that trained nothing (a finished run resumed, or a dry run). */
function resultWithoutTraining(plan: RunPlan, fields: Pick<TrainResult, 'steps' | 'output' | 'checkpoint'> & Partial<TrainResult>): TrainResult {
  return {
    stepsThisRun: 0,
    seconds: 0,
    samplesPerSec: 0,
    finalLoss: NaN,
    identities: plan.numClasses,
    images: plan.numImages,
    verification: [],
    modelDir: null,
    interrupted: false,
    alreadyFinished: false,
    ...fields,
  };
}

function finishedResult(plan: RunPlan, output: string, checkpoint: string): TrainResult {
  return resultWithoutTraining(plan, { steps: plan.resumed!.checkpoint.step, output, checkpoint, alreadyFinished: true });
}

/**
 * Every check a run makes before its first step (head size, backbone size, host memory, WASM heap), with
 * the same lines it would log, and nothing trained or written: the run folder is not even opened.
 */
async function dryRun(plan: RunPlan, log: (line: string) => void): Promise<TrainResult> {
  const c = plan.config;
  const headSizing = sizeHead(c, plan.numClasses);
  checkBackboneSize(c, plan.engine.backend);
  checkHostMemory(hostParts(c, plan.numClasses, plan.numImages, headSizing.queueSize));
  const fq = createBackbone(c.backbone, backboneOptions(c));
  try {
    await planHeap(plan, headSizing, fq, log);
    log(describeRun(plan, fq.paramCount(), headSizing.queueSize));
  } finally {
    fq.dispose();
  }
  log('attfc: dry run: the run fits; nothing trained, nothing written');
  return resultWithoutTraining(plan, { steps: plan.totalSteps, output: path.resolve(c.output), checkpoint: null, dryRun: true });
}

async function trainInFolder(
  plan: RunPlan,
  folder: RunFolder,
  events: EventEmitter,
  log: (line: string) => void,
  stopRequested: () => boolean,
): Promise<TrainResult> {
  const c = plan.config;
  const { totalSteps } = plan;
  const headSizing = sizeHead(c, plan.numClasses); // before the backbone: its errors come cheaper
  checkBackboneSize(c, plan.engine.backend);
  checkHostMemory(hostParts(c, plan.numClasses, plan.numImages, headSizing.queueSize, plan.engine.backend, plan.synthetic !== null));
  const fq = createBackbone(c.backbone, backboneOptions(c));
  const deviceBudget = await planHeap(plan, headSizing, fq, log).catch((e: unknown) => {
    fq.dispose();
    throw e;
  });
  // before f_k exists: the class encoder starts as a copy of f_q (a resume restores both instead)
  if (c.initFrom && !plan.resumed) for (const line of await initBackboneFrom(c.initFrom, fq, c.data)) log(line);
  const { head, fk, encoder } = createHead(c, plan.numClasses, headSizing, fq, deviceBudget);
  const sgd = createOptimizer(c, fq, head);
  const pipeline = createPipeline(plan, log);
  const batchNormRows = splitRows(c.batchSize, plan.replicas).map(([a, b]) => b - a);
  const state: CheckpointedState = { config: c, fq, fk, sgd, head, pipeline, data: plan.data, batchNormRows };
  const checkpoints = new CheckpointPolicy(folder.checkpoints, state, (e) => events.emit('checkpoint', e));
  let step = 0;
  let group: Awaited<ReturnType<typeof startReplicas>> = null;
  try {
    let replicaRandomStates: RankRandomState[] = [];
    if (plan.resumed) {
      const savedImages = (plan.resumed.checkpoint.json.data as DatasetFingerprint | undefined)?.images;
      const sameImages = savedImages === undefined || savedImages === plan.numImages;
      const restored = checkpoints.restore(plan.resumed.checkpoint, plan.resumed.from, sameImages);
      step = restored.step;
      replicaRandomStates = restored.replicaRandomStates;
      folder.resumeAt(step, c);
      log(`attfc: resumed from ${plan.resumed.from} at step ${step}`);
      for (const note of resumeNotes(plan, sameImages, restored.batchNormRows, batchNormRows)) log(note);
    } else folder.startFresh(c);
    group = await startReplicas(plan, fq, fk, log, replicaRandomStates);
    if (group) {
      const g = group;
      state.replicaRandomStates = () => g.randomStates();
    }
    folder.writeEnvironment(plan.replicas, plan.resumed?.from);
    log(describeRun(plan, fq.paramCount(), headSizing.queueSize));
    const ownSets = plan.synthetic ? await writeHeldOutPairs(plan.synthetic, folder, log) : [];
    const verification = new VerificationCallback(c, fq, folder, log, (e) => events.emit('verify', e), ownSets);
    const trainStep = new TrainStep({ config: c, fq, head, sgd, encoder, group, localBatch: plan.localBatch, keysPerSample: plan.keysPerSample });

    const startStep = step;
    const t0 = performance.now();
    const metrics = new MetricsCallback(c, totalSteps, { pipeline, head, group, folder }, (m) => events.emit('step', m));
    let finalLoss = NaN;
    let interrupted = false;
    while (step < totalSteps) {
      // A prefetched batch resolves as a microtask, so without this the loop would never give the
      // event loop a turn: Ctrl-C (SIGINT) and worker messages would wait for the pipeline to run dry.
      await new Promise<void>((r) => setImmediate(r));
      if (stopRequested()) {
        interrupted = true;
        break;
      }
      const tStep = performance.now();
      const batch = await pipeline.next().catch((e: unknown) => {
        if (!(e instanceof AttfcError)) throw e;
        // bad data: keep what was trained; the checkpoint's pipeline state makes the failed batch again
        if (step === startStep) throw new AttfcError(`${e.message}; stopped at step ${step}, before training anything in this run`);
        const ckpt = checkpoints.write(step);
        throw new AttfcError(
          `${e.message}; stopped at step ${step} with checkpoint ${ckpt}; resume with --resume ${folder.dir} ` +
            `once the data is repaired (then with --allow-data-change) or with a higher --max-bad-share`,
        );
      });
      const tData = performance.now();
      const lr = learningRate(step, { lr: c.lr, totalSteps, schedule: c.schedule, warmupSteps: c.warmupSteps, polyPower: c.polyPower, minLr: 0 });
      const { loss, gradNorm, times } = trainStep.run(batch, lr, step, checkpoints.last);
      step++;
      finalLoss = loss;
      const tEnd = performance.now();
      metrics.afterStep({ step, epoch: batch.epoch, loss, lr, gradNorm, times: { data: (tData - tStep) / 1000, ...times, step: (tEnd - tStep) / 1000 } });
      if (verification.due(step, totalSteps)) await verification.run(step);
      if (checkpoints.due(step, totalSteps)) checkpoints.write(step);
    }
    const ckpt = checkpoints.write(step);
    log(`attfc: checkpoint ${ckpt}`);
    if (!interrupted && verification.enabled) await verification.run(step);
    let modelDir: string | null = null;
    if (c.export && !interrupted) {
      modelDir = await exportEmbeddingModel(fq, c, step, folder.dir, verification.results);
      log(`attfc: exported f_q as a TensorFlow.js model${c.export === 'onnx' ? ' and model.onnx' : ''} to ${modelDir}`);
    }
    const seconds = (performance.now() - t0) / 1000;
    return {
      steps: step,
      stepsThisRun: step - startStep,
      seconds,
      samplesPerSec: ((step - startStep) * c.batchSize) / Math.max(seconds, 1e-9),
      finalLoss,
      identities: plan.numClasses,
      images: plan.numImages,
      verification: verification.results,
      output: folder.dir,
      modelDir,
      checkpoint: ckpt,
      interrupted,
      alreadyFinished: false,
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

/** On-demand synthetic data: its held-out verification pairs, rendered into the run folder (none when it has no pairs). */
async function writeHeldOutPairs(options: ResolvedSynthOptions, folder: RunFolder, log: (line: string) => void): Promise<string[]> {
  const t0 = performance.now();
  const file = folder.syntheticVerificationBin;
  const pairs = await writeSyntheticVerificationBin(file, options);
  if (pairs === 0) return [];
  log(`attfc: wrote ${pairs} SYNTHETIC verification pairs of ${options.verifyIdentities} held-out identities to ${file} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return [file];
}

function createPipeline(plan: RunPlan, log: (line: string) => void): DataPipeline {
  const c = plan.config;
  return new DataPipeline({
    dataset: c.data,
    batchSize: c.batchSize,
    sampleNum: plan.keysPerSample + 1,
    inputSize: c.inputSize,
    seed: c.seed,
    workers: c.workers,
    prefetch: c.prefetch,
    maxBadShare: c.maxBadShare,
    onWarning: (m) => log(`attfc: warning: ${m}`),
  });
}

function describeRun(plan: RunPlan, paramCount: number, queueSize: number): string {
  const c = plan.config;
  return (
    `attfc: training ${c.backbone} (${(paramCount / 1e6).toFixed(2)}M params, ${c.inputSize}x${c.inputSize}) with head ${c.head} on ${plan.numClasses} identities / ${plan.numImages} images` +
    `${plan.synthetic ? ' (SYNTHETIC, rendered on demand)' : ''}; ` +
    `${plan.totalSteps} steps of batch ${c.batchSize}${c.head === 'attfc' ? `, K=${c.sampleNum}, DCC ${queueSize} slots` : ''}${c.head === 'pfc' ? `, sample rate ${c.sampleRate}` : ''}`
  );
}
