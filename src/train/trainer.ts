// The trainer: plans the run and takes its folder (locked; a fresh run refuses one that holds another
// run, a resume of a finished run stops there), checks that the configuration fits in memory, builds
// what a run needs (f_q, head, optimizer, data pipeline, checkpoints, replicas, callbacks), restores a
// checkpoint when resuming, then runs the loop: batch -> learning rate -> one step -> callbacks. Each
// concern lives in the module named for it.
import { EventEmitter } from 'node:events';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createBackbone } from '../backbones/index.js';
import { DataPipeline } from '../data/pipeline.js';
import type { TrainConfigInput } from './config.js';
import { learningRate } from './schedule.js';
import { AttfcError } from '../errors.js';
import { planRun, backboneOptions, type RunPlan } from './runPlan.js';
import { sizeHead, createHead, headSplit } from './headFactory.js';
import { planHeap } from './heapPlan.js';
import { checkBackboneSize, checkHostMemory, hostParts } from './hostMemory.js';
import { RunFolder } from './runFolder.js';
import { CheckpointPolicy, type CheckpointedState } from './checkpointPolicy.js';
import { replicaRandomState, splitRows, type RankRandomState } from './dataParallel/shared.js';
import type { GradientExchange } from './dataParallel/exchange.js';
import { ProcessGroupExchange } from './distributed/processGroupExchange.js';
import { PEER_FAILED_EXIT } from './distributed/launchEnv.js';
import { allAgree, broadcastVariables, faultLine, leaderDecides, type DistributedRun } from './distributed/distributedRun.js';
import { ProcessGroupError } from '../engine/torch/processGroup.js';
import type { Backbone } from '../backbones/index.js';
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
import type { Head } from '../heads/types.js';
import { formatBytes } from '../engine/index.js';

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
  const plan = await planRun(raw, options.resume, options.allowDataChange ?? false, options.autoResume ?? false);
  const run = plan.distributed;
  if (run && !run.leader) log = quietRank(run.rank, log);
  if (options.dryRun) return dryRun(plan, log);
  const c = plan.config;
  const { totalSteps } = plan;
  // rank 0 alone holds the run folder; a distributed run settles its outcome on every rank
  let folder: RunFolder | null = null;
  const opened = onLeader(run, (): 'finished' | 'train' => {
    folder = RunFolder.open(c.output);
    if (plan.autoResume) log(plan.autoResume);
    if (plan.resumed) {
      const { from, checkpoint } = plan.resumed;
      if (checkpoint.step >= totalSteps) {
        log(`attfc: ${from} is the end of a finished run (step ${checkpoint.step} of ${totalSteps}); nothing to train, nothing written`);
        return 'finished';
      }
      // continuing into another folder: it must not hold a different run
      if (runFolderOf(from) !== folder.dir) folder.prepareFresh(options.overwrite ?? false, '');
    } else {
      folder.prepareFresh((options.overwrite ?? false) || plan.restartOverwrites, `pass --resume ${c.output} to continue it, `);
    }
    return 'train';
  });
  try {
    // (after a failure the group is abandoned with the process: c10d cannot tear it down safely)
    const outcome = await opened;
    if (outcome === 'finished') {
      run?.pg.destroy();
      return finishedResult(plan, path.resolve(c.output), plan.resumed!.from);
    }
    return await trainInFolder(plan, folder, events, log, stopRequested);
  } finally {
    (folder as RunFolder | null)?.close();
  }
}

/** Rank 0's action, settled on every rank of a distributed run (alone: just the action). */
function onLeader<T>(run: DistributedRun | null, action: () => T): Promise<T> {
  return run ? Promise.resolve().then(() => leaderDecides(run, action)) : Promise.resolve().then(action);
}

/** A rank other than 0 prints only warnings (rank 0 reports the run), marked with its rank. */
function quietRank(rank: number, log: (line: string) => void): (line: string) => void {
  return (line) => {
    if (/\bwarning\b/.test(line)) log(`[rank ${rank}] ${line}`);
  };
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
  const split = headSplit(c, plan.distributed);
  const headSizing = sizeHead(c, plan.numClasses, split);
  checkBackboneSize(c, plan.engine.backend);
  checkHostMemory(hostParts(c, plan.numClasses, plan.numImages, headSizing.queueSize, 'wasm', false, split));
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
  /** The run folder: null on ranks other than 0 of a distributed run (they write nothing). */
  folder: RunFolder | null,
  events: EventEmitter,
  log: (line: string) => void,
  stopRequested: () => boolean,
): Promise<TrainResult> {
  const c = plan.config;
  const { totalSteps } = plan;
  const run = plan.distributed;
  // every rank checks and builds; a failure on any rank stops them all with its message
  const agree = <T>(action: () => T | Promise<T>): Promise<T> => (run ? allAgree(run, action) : Promise.resolve().then(action));
  const built = await agree(async () => {
    const split = headSplit(c, run);
    const headSizing = sizeHead(c, plan.numClasses, split); // before the backbone: its errors come cheaper
    checkBackboneSize(c, plan.engine.backend);
    checkHostMemory(hostParts(c, plan.numClasses, plan.numImages, headSizing.queueSize, plan.engine.backend, plan.synthetic !== null, split));
    const fq = createBackbone(c.backbone, backboneOptions(c));
    const deviceBudget = await planHeap(plan, headSizing, fq, log).catch((e: unknown) => {
      fq.dispose();
      throw e;
    });
    return { headSizing, fq, deviceBudget };
  });
  const { headSizing, fq, deviceBudget } = built;
  // before f_k exists: the class encoder starts as a copy of f_q (a resume restores both instead);
  // a distributed run takes rank 0's weights (its model file need be on rank 0's machine only)
  if (c.initFrom && !plan.resumed) {
    const lines = await (run ? onLeader(run, () => initBackboneFrom(c.initFrom!, fq, c.data)) : initBackboneFrom(c.initFrom, fq, c.data));
    for (const line of await lines) log(line);
  }
  if (run && !plan.resumed) broadcastVariables(run, [fq]);
  const exchange = run ? new ProcessGroupExchange({ pg: run.pg, batchSize: c.batchSize, fq, syncBn: c.syncBn }) : null;
  const { head, fk, encoder } = createHead(c, plan.numClasses, headSizing, fq, deviceBudget, exchange?.collectives());
  const sgd = createOptimizer(c, fq, head);
  const pipeline = createPipeline(plan, log, exchange?.rows);
  const batchNormRows = run ? (c.syncBn ? [c.batchSize] : Array<number>(run.worldSize).fill(plan.localBatch)) : splitRows(c.batchSize, plan.replicas).map(([a, b]) => b - a);
  const state: CheckpointedState = { config: c, fq, fk, sgd, head, pipeline, data: plan.data, batchNormRows, writer: !run || run.leader };
  const checkpoints = new CheckpointPolicy(folder?.checkpoints ?? path.join(path.resolve(c.output), 'checkpoints'), state, (e) => events.emit('checkpoint', e));
  let step = 0;
  let group: GradientExchange | null = exchange;
  let failed = false;
  try {
    let replicaRandomStates: RankRandomState[] = [];
    if (plan.resumed) {
      const savedImages = (plan.resumed.checkpoint.json.data as DatasetFingerprint | undefined)?.images;
      const sameImages = savedImages === undefined || savedImages === plan.numImages;
      const restored = checkpoints.restore(plan.resumed.checkpoint, plan.resumed.from, sameImages);
      step = restored.step;
      replicaRandomStates = restored.replicaRandomStates;
      folder?.resumeAt(step, c);
      log(`attfc: resumed from ${plan.resumed.from} at step ${step}${run ? ` (${run.worldSize} ranks)` : ''}`);
      for (const note of resumeNotes(plan, sameImages, restored.batchNormRows, batchNormRows)) log(note);
    } else folder?.startFresh(c);
    if (run) {
      setRankRandomStates(run.rank, c.seed, fq, fk, replicaRandomStates[run.rank - 1]);
      state.replicaRandomStates = () => gatherRandomStates(run, fq, fk);
      log(describeDistributed(plan, run, exchange!));
    } else {
      const replicas = await startReplicas(plan, fq, fk, log, replicaRandomStates);
      if (replicas) state.replicaRandomStates = () => replicas.randomStates();
      group = replicas;
    }
    folder?.writeEnvironment(plan.replicas, plan.resumed?.from, run ? { worldSize: run.worldSize, launcher: run.env.launcher, syncBn: c.syncBn } : undefined);
    log(describeRun(plan, fq.paramCount(), headSizing.queueSize, head));
    const ownSets = plan.synthetic ? await writeHeldOutPairs(plan.synthetic, folder, log) : [];
    const shard = run ? { rank: run.rank, worldSize: run.worldSize, allGather: (v: Float32Array) => run.pg.allGatherValues(v) } : undefined;
    const verification = new VerificationCallback(c, fq, folder, log, (e) => events.emit('verify', e), ownSets, shard);
    const trainStep = new TrainStep({ config: c, fq, head, sgd, encoder, group, localBatch: plan.localBatch, keysPerSample: plan.keysPerSample });

    const startStep = step;
    const t0 = performance.now();
    const metrics = new MetricsCallback(c, totalSteps, { pipeline, group, folder }, (m) => events.emit('step', m));
    let finalLoss = NaN;
    let interrupted = false;
    while (step < totalSteps) {
      // A prefetched batch resolves as a microtask, so without this the loop would never give the
      // event loop a turn: Ctrl-C (SIGINT) and worker messages would wait for the pipeline to run dry.
      await new Promise<void>((r) => setImmediate(r));
      // (ranks of a distributed run decide to stop together, in the step's reduction)
      if (!run && stopRequested()) {
        interrupted = true;
        break;
      }
      const tStep = performance.now();
      const batch = await pipeline.next().catch((e: unknown) => {
        if (!(e instanceof AttfcError)) throw e;
        // bad data: keep what was trained; the checkpoint's pipeline state makes the failed batch again
        if (step === startStep) throw new AttfcError(`${e.message}; stopped at step ${step}, before training anything in this run`);
        if (run) throw new AttfcError(`rank ${run.rank}: ${e.message}; stopped at step ${step}; resume with --resume ${c.output} once the data is repaired (then with --allow-data-change) or with a higher --max-bad-share`);
        const ckpt = checkpoints.write(step);
        throw new AttfcError(
          `${e.message}; stopped at step ${step} with checkpoint ${ckpt}; resume with --resume ${folder!.dir} ` +
            `once the data is repaired (then with --allow-data-change) or with a higher --max-bad-share`,
        );
      });
      const tData = performance.now();
      const lr = learningRate(step, { lr: c.lr, totalSteps, schedule: c.schedule, warmupSteps: c.warmupSteps, polyPower: c.polyPower, minLr: 0 });
      const r = withFaults(run, step + 1, () => trainStep.run(batch, lr, step, checkpoints.last, stopRequested()));
      step++;
      finalLoss = r.loss;
      const tEnd = performance.now();
      metrics.afterStep({ step, epoch: batch.epoch, loss: r.loss, lr, gradNorm: r.gradNorm, diagnostics: r.diagnostics, times: { data: (tData - tStep) / 1000, ...r.times, step: (tEnd - tStep) / 1000 } });
      if (r.stop) {
        interrupted = true;
        break;
      }
      if (verification.due(step, totalSteps)) await withFaultsAsync(run, step, () => verification.run(step));
      if (checkpoints.due(step, totalSteps)) withFaults(run, step, () => checkpoints.write(step));
    }
    const ckpt = withFaults(run, step, () => checkpoints.write(step));
    if (folder) log(`attfc: checkpoint ${ckpt}`);
    if (!interrupted && verification.enabled) await withFaultsAsync(run, step, () => verification.run(step));
    let modelDir: string | null = null;
    if (c.export && !interrupted && folder) {
      modelDir = await exportEmbeddingModel(fq, c, step, (folder as RunFolder).dir, verification.results);
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
      output: folder?.dir ?? path.resolve(c.output),
      modelDir,
      checkpoint: ckpt,
      interrupted,
      alreadyFinished: false,
    };
  } catch (e) {
    failed = true;
    throw e;
  } finally {
    // a clean finish waits for every rank before leaving; after a failure nobody waits
    await group?.close(failed);
    await pipeline.close();
    sgd.dispose();
    head.dispose();
    fq.dispose();
    fk?.dispose();
  }
}

/** A collective failure inside `f` (a rank died, a timeout) becomes one line naming who and when. */
function withFaults<T>(run: DistributedRun | null, step: number, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (run && e instanceof ProcessGroupError) throw new AttfcError(faultLine(run, e, step), PEER_FAILED_EXIT);
    throw e;
  }
}

async function withFaultsAsync<T>(run: DistributedRun | null, step: number, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (run && e instanceof ProcessGroupError) throw new AttfcError(faultLine(run, e, step), PEER_FAILED_EXIT);
    throw e;
  }
}

/** A distributed rank's dropout streams: its own from the checkpoint, else one of its own (rank 0 keeps its backbone's). */
function setRankRandomStates(rank: number, seed: number, fq: Backbone, fk: Backbone | null, saved: RankRandomState | undefined): void {
  if (rank === 0) return;
  fq.setRandomState?.(saved?.fq ?? replicaRandomState(seed, rank, 'fq'));
  if (fk) fk.setRandomState?.(saved?.fk ?? replicaRandomState(seed, rank, 'fk'));
}

/** Every rank's dropout states (for rank 0's checkpoint): ranks 1.., as one float64 sum (each rank fills its own slots). */
function gatherRandomStates(run: DistributedRun, fq: Backbone, fk: Backbone | null): RankRandomState[] {
  const WORDS = 5;
  const v = new Float64Array(run.worldSize * 2 * WORDS);
  const put = (net: number, state: readonly (number | null)[] | undefined) => state?.slice(0, WORDS).forEach((x, i) => (v[(run.rank * 2 + net) * WORDS + i] = x ?? NaN));
  put(0, fq.randomState?.());
  put(1, fk?.randomState?.());
  const all = run.pg.allReduceValues(v, 'sum');
  const read = (rank: number, net: number, has: boolean) => (has ? Array.from(all.subarray((rank * 2 + net) * WORDS, (rank * 2 + net + 1) * WORDS)) : null);
  return Array.from({ length: run.worldSize - 1 }, (_, i) => ({ fq: read(i + 1, 0, !!fq.randomState), fk: read(i + 1, 1, !!fk?.randomState) }));
}

function describeDistributed(plan: RunPlan, run: DistributedRun, exchange: ProcessGroupExchange): string {
  const c = plan.config;
  return (
    `attfc: distributed: ${run.worldSize} ranks (${run.env.launcher}, ${run.pg.kind}, store ${run.pg.storeAddress()}) x ${plan.engine.threads} thread${plan.engine.threads === 1 ? '' : 's'}, ` +
    `batch ${c.batchSize} = ${run.worldSize} x ${plan.localBatch} rows, gradients in ${exchange.bucketCount} bucket${exchange.bucketCount === 1 ? '' : 's'}, ` +
    (c.syncBn ? 'batch norm over the global batch (--sync-bn)' : `each rank's batch norm over its own ${plan.localBatch} rows (--sync-bn for the global batch)`)
  );
}

/** On-demand synthetic data: its held-out verification pairs, rendered into the run folder (none when it has no pairs). */
async function writeHeldOutPairs(options: ResolvedSynthOptions, folder: RunFolder | null, log: (line: string) => void): Promise<string[]> {
  const t0 = performance.now();
  // ranks without the run folder render their own copy (the same bytes) to verify their share
  const file = folder?.syntheticVerificationBin ?? path.join(mkdtempSync(path.join(os.tmpdir(), 'attfc-rank-')), 'synth_val.bin');
  const pairs = await writeSyntheticVerificationBin(file, options);
  if (pairs === 0) return [];
  log(`attfc: wrote ${pairs} SYNTHETIC verification pairs of ${options.verifyIdentities} held-out identities to ${file} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return [file];
}

function createPipeline(plan: RunPlan, log: (line: string) => void, rows?: [number, number]): DataPipeline {
  const c = plan.config;
  const local = plan.distributed?.env.localWorldSize ?? 1;
  return new DataPipeline({
    dataset: c.data,
    batchSize: c.batchSize,
    sampleNum: plan.keysPerSample + 1,
    inputSize: c.inputSize,
    seed: c.seed,
    // the ranks of one machine share its cores
    workers: c.workers ?? (local > 1 ? Math.max(1, Math.floor(os.availableParallelism() / local)) : undefined),
    ...(rows ? { rows } : {}),
    prefetch: c.prefetch,
    maxBadShare: c.maxBadShare,
    onWarning: (m) => log(`attfc: warning: ${m}`),
  });
}

/** The run in one line; with the built `head`, also its state's size (and, split across the ranks, rank 0's part). */
function describeRun(plan: RunPlan, paramCount: number, queueSize: number, head?: Head): string {
  const c = plan.config;
  const sharding = head?.sharding;
  const headState = !head
    ? ''
    : sharding
      ? `; head sharded across ${sharding.worldSize} ranks (--shard-head): rank ${sharding.rank} holds ${sharding.describe()}, head state ${formatBytes(head.stateBytes())} per rank`
      : `; head state ${formatBytes(head.stateBytes())}${c.shardHead ? ' (--shard-head splits it only across the ranks of a distributed run)' : ''}`;
  return (
    `attfc: training ${c.backbone} (${(paramCount / 1e6).toFixed(2)}M params, ${c.inputSize}x${c.inputSize}) with head ${c.head} on ${plan.numClasses} identities / ${plan.numImages} images` +
    `${plan.synthetic ? ' (SYNTHETIC, rendered on demand)' : ''}; ` +
    `${plan.totalSteps} steps of batch ${c.batchSize}${c.head === 'attfc' ? `, K=${c.sampleNum}, DCC ${queueSize} slots` : ''}${c.head === 'pfc' ? `, sample rate ${c.sampleRate}` : ''}` +
    headState
  );
}
