// Run planning: everything decided before a model is built. The configuration (fresh, or the one saved
// in the checkpoint being resumed), the number of data-parallel replicas or the process group of a
// distributed run, the engine, and the run's size (identities, images, steps). Builds no tensors.
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine, chooseBackend, engineInfo, type EngineInfo } from '../engine/index.js';
import type { TorchBackend } from '../engine/torch/backend.js';
import { torchAvailable } from '../engine/torch/index.js';
import type { BackboneOptions } from '../backbones/index.js';
import { openDataset } from '../data/dataset.js';
import { SyntheticDataset } from '../data/synthetic/source.js';
import type { ResolvedSynthOptions } from '../data/synthetic/options.js';
import { datasetFingerprint, fingerprintDifferences, type DatasetFingerprint } from '../data/fingerprint.js';
import { AttfcError } from '../errors.js';
import { parseTrainConfig, resumedTrainConfig, type TrainConfig, type TrainConfigInput } from './config.js';
import { listCheckpoints, loadCheckpoint, resolveCheckpoint, type CheckpointData } from './checkpoint.js';
import { splitRows } from './dataParallel/shared.js';
import { withInitArchitecture } from './initFrom.js';
import { defaultRankThreads, readLaunchEnv, type LaunchEnv } from './distributed/launchEnv.js';
import { agreeOnFields, broadcastCheckpoint, joinDistributedRun, leaderDecides, type DistributedRun } from './distributed/distributedRun.js';

export interface RunPlan {
  config: TrainConfig;
  /** The checkpoint this run continues and the folder it came from; null for a fresh run. */
  resumed: { from: string; checkpoint: CheckpointData } | null;
  engine: EngineInfo;
  replicas: number;
  /** Why there is a single replica ('' when that was not a fallback). */
  parallelReason: string;
  /** Rows of each batch that rank 0 computes. */
  localBatch: number;
  /** Key images per sample: K-1 for AttFC, 0 otherwise. */
  keysPerSample: number;
  numClasses: number;
  numImages: number;
  totalSteps: number;
  /** The training data's fingerprint (checkpoints record it). */
  data: DatasetFingerprint;
  /** On a resume allowed onto other data: what differs from the checkpoint's data; '' otherwise. */
  dataChange: string;
  /** The generator options when the data is the on-demand synthetic source (`synth:...`), else null. */
  synthetic: ResolvedSynthOptions | null;
  /** This process's place in a distributed run (torchrun, `attfc train --nproc`), or null alone. */
  distributed: DistributedRun | null;
  /** Why this run resumes without --resume (a torchrun restart found a checkpoint), or ''. */
  autoResume: string;
  /** A torchrun restart found no checkpoint in --output: the earlier attempt's files are replaced. */
  restartOverwrites: boolean;
}

/**
 * `autoResume`: without `resume`, continue the newest checkpoint of the output folder when there is one
 * (else start the run there, replacing what an attempt that never reached a checkpoint left): the same
 * command then serves a first start and every restart (Kubernetes, SLURM requeues). torchrun's restarts
 * (TORCHELASTIC_RESTART_COUNT >= 1) do this by themselves.
 */
export async function planRun(raw: Partial<TrainConfigInput> | null, resume: string | undefined, allowDataChange = false, autoResume = false): Promise<RunPlan> {
  const launch = readLaunchEnv();
  let distributed: DistributedRun | null = null;
  let engine: EngineInfo;
  let resolved: ResolvedConfig;
  let parallel: { replicas: number; reason: string };
  if (launch) {
    ({ run: distributed, engine } = await joinRun(launch, raw));
    resolved = resolveDistributedConfig(distributed, raw, resume, autoResume);
    parallel = { replicas: 1, reason: '' };
  } else {
    const cont = resume || !autoResume ? null : continuation(raw, 'attfc: --auto-resume');
    resolved = { ...resolveConfig(cont?.from ? withoutOutput(raw) : raw, resume ?? cont?.from), autoResume: cont?.line ?? '', restartOverwrites: cont?.overwrite ?? false };
    parallel = planParallelism(resolved.config, await chooseBackend());
    engine = await initEngine(parallel.replicas > 1 ? { threads: 1 } : {});
    if (parallel.replicas > 1 && engine.backend !== 'wasm') {
      if (resolved.config.parallel === 'data') throw new AttfcError(`parallel = "data" needs the wasm backend, but the backend is ${engine.backend}; use parallel "threads"`);
      parallel.replicas = 1;
      parallel.reason = `backend ${engine.backend}`;
    }
  }
  const { config: c, resumed } = resolved;
  const dataset = openDataset(c.data);
  const numClasses = dataset.numIdentities;
  const numImages = dataset.numImages;
  let data: DatasetFingerprint;
  const synthetic = dataset instanceof SyntheticDataset ? dataset.options : null;
  try {
    data = datasetFingerprint(c.data, dataset);
  } finally {
    dataset.close();
  }
  const dataChange = resumed ? checkSameData(resumed, c.data, data, allowDataChange) : '';
  if (numImages < c.batchSize) throw new AttfcError(`${c.data}: ${numImages} images is fewer than one batch (batchSize ${c.batchSize})`);
  if (distributed) {
    const { images, identities, hashes } = data;
    agreeOnFields(distributed, { ...trainingFields(resolved.own ?? c), data: { images, identities, hashes }, resumedStep: resumed?.checkpoint.step ?? null });
    const W = distributed.worldSize;
    if (c.batchSize % W !== 0 || c.batchSize / W < 2)
      throw new AttfcError(`batchSize ${c.batchSize} must be a multiple of the ${W} ranks with at least 2 rows each (batch norm): try ${Math.max(2 * W, Math.round(c.batchSize / W) * W)}`);
  }
  const stepsPerEpoch = Math.floor(numImages / c.batchSize);
  return {
    config: c,
    resumed,
    engine,
    replicas: parallel.replicas,
    parallelReason: parallel.reason,
    localBatch: distributed ? c.batchSize / distributed.worldSize : splitRows(c.batchSize, parallel.replicas)[0][1],
    keysPerSample: c.head === 'attfc' ? c.sampleNum - 1 : 0,
    numClasses,
    numImages,
    totalSteps: c.steps ?? Math.max(1, Math.round(c.epochs * stepsPerEpoch)),
    data,
    dataChange,
    synthetic,
    distributed,
    autoResume: resolved.autoResume,
    restartOverwrites: resolved.restartOverwrites,
  };
}

/**
 * Where a restarted run continues: the newest checkpoint of its output folder (`from`, with the line that
 * says so), or, when it has none, a fresh start that replaces the earlier attempt's files (`overwrite`).
 */
function continuation(raw: Partial<TrainConfigInput> | null, who: string): { from?: string; line: string; overwrite: boolean } | null {
  const output = raw?.output;
  if (!output) return null;
  const found = listCheckpoints(path.join(output, 'checkpoints'));
  if (found.length) return { from: output, line: `${who}: resuming from ${found[found.length - 1]}, the newest checkpoint of --output ${output}`, overwrite: false };
  return { line: `${who}: no checkpoint in ${output} yet; starting the run there`, overwrite: true };
}

/** A fresh-run configuration used as a resume's overrides: the output is the checkpoint's run folder. */
function withoutOutput(raw: Partial<TrainConfigInput> | null): Partial<TrainConfigInput> | null {
  return raw ? { ...raw, output: undefined } : raw;
}

/** Configuration keys a rank may set for itself: where its data and outputs are, its decode threads. */
const RANK_LOCAL_KEYS = ['data', 'output', 'workers', 'prefetch'] as const;

/** The configuration keys every rank must agree on (the data is compared by its fingerprint instead). */
function trainingFields(c: TrainConfig): Record<string, unknown> {
  const out: Record<string, unknown> = { ...c };
  for (const k of RANK_LOCAL_KEYS) delete out[k];
  return out;
}

/**
 * Starts the engine a distributed rank runs on (backend torch: compute and collectives in libtorch
 * memory) with its share of the cores, and joins the process group.
 */
async function joinRun(launch: LaunchEnv, raw: Partial<TrainConfigInput> | null): Promise<{ run: DistributedRun; engine: EngineInfo }> {
  const who = `${launch.launcher === 'environment' ? 'RANK/WORLD_SIZE are set' : `started by ${launch.launcher}`} (rank ${launch.rank} of ${launch.worldSize})`;
  const wanted = process.env.ATTFC_BACKEND;
  if (wanted && wanted !== 'auto' && wanted !== 'torch')
    throw new AttfcError(`distributed training runs on backend torch (its collectives are libtorch's c10d), not ${wanted}: ${who}`);
  const available = torchAvailable();
  if (!available.ok)
    throw new AttfcError(`distributed training runs on backend torch (c10d's Gloo/NCCL through the libtorch addon), and ${available.reason.replace(/^the /, 'the ')}: ${who}`);
  // torchrun sets OMP_NUM_THREADS (to 1 unless given); else this machine's cores are shared by its ranks
  const omp = Number(process.env.OMP_NUM_THREADS);
  const threads = process.env.ATTFC_THREADS ? undefined : Number.isInteger(omp) && omp >= 1 ? omp : defaultRankThreads(launch.localWorldSize);
  // on GPUs each rank of a machine takes its own (cuda:LOCAL_RANK); NCCL then carries the collectives
  const engine = await initEngine({ backend: 'torch', ...(threads ? { threads } : {}), deviceIndex: launch.localRank, log: launch.rank === 0 });
  const timeout = Number((raw as { distTimeout?: unknown } | null)?.distTimeout ?? 600);
  if (!(timeout > 0)) throw new AttfcError(`distTimeout = ${JSON.stringify((raw as { distTimeout?: unknown }).distTimeout)}: expected a number of seconds > 0`);
  const run = joinDistributedRun(tf.backend() as TorchBackend, launch, timeout);
  return { run, engine };
}

interface ResolvedConfig {
  config: TrainConfig;
  resumed: RunPlan['resumed'];
  /** A rank other than 0: the configuration its own flags give (compared with rank 0's); null otherwise. */
  own?: TrainConfig | null;
  autoResume: string;
  restartOverwrites: boolean;
}

/**
 * Rank 0 resolves the configuration (and what a resume continues: under a torchrun restart, the newest
 * checkpoint of --output) and sends it with the checkpoint to every rank; the others keep their own
 * data path and decode threads.
 */
function resolveDistributedConfig(run: DistributedRun, raw: Partial<TrainConfigInput> | null, resume: string | undefined, autoResume: boolean): ResolvedConfig {
  let loaded: CheckpointData | null = null;
  const header = leaderDecides(run, () => {
    // torchrun restarted every worker after a failure (or --auto-resume): the same command continues the run
    const restarted = run.env.restartCount > 0 ? `attfc: torchrun restart ${run.env.restartCount}` : autoResume ? 'attfc: --auto-resume' : null;
    const cont = resume || !restarted ? null : continuation(raw, restarted);
    const r = resolveConfig(cont?.from ? withoutOutput(raw) : raw, resume ?? cont?.from);
    loaded = r.resumed?.checkpoint ?? null;
    return { config: r.config, from: r.resumed?.from ?? null, autoResume: cont?.line ?? '', restartOverwrites: cont?.overwrite ?? false };
  });
  const checkpoint = header.from ? broadcastCheckpoint(run, loaded) : null;
  const resumed = header.from && checkpoint ? { from: header.from, checkpoint } : null;
  if (run.leader) return { config: header.config, resumed, own: null, autoResume: header.autoResume, restartOverwrites: header.restartOverwrites };
  // this rank's own flags: its local keys are kept; the rest must match rank 0's (checked with the data)
  const given = (raw ?? {}) as Record<string, unknown>;
  const local: Record<string, unknown> = {};
  for (const k of RANK_LOCAL_KEYS) if (given[k] !== undefined) local[k] = given[k];
  const config = parseTrainConfig({ ...header.config, ...local, output: header.config.output }, `rank ${run.rank} config`);
  let own: TrainConfig | null = null;
  if (!resumed) own = parseTrainConfig(withInitArchitecture(raw ?? {}), `rank ${run.rank} config`);
  return { config, resumed, own: own ? { ...own, output: header.config.output } : null, autoResume: header.autoResume, restartOverwrites: header.restartOverwrites };
}

/**
 * A resume continues on the data its checkpoint was trained on: other data (by the fingerprint) is an
 * AttfcError unless `allow`, and then the difference is returned for the log. Checkpoints from before
 * fingerprints were recorded are taken as they are.
 */
function checkSameData(resumed: NonNullable<RunPlan['resumed']>, path: string, now: DatasetFingerprint, allow: boolean): string {
  const saved = resumed.checkpoint.json.data as DatasetFingerprint | undefined;
  if (!saved || typeof saved !== 'object' || !saved.hashes) return '';
  const diff = fingerprintDifferences(saved, now);
  if (!diff || allow) return diff;
  throw new AttfcError(
    `--resume ${resumed.from}: the checkpoint was trained on ${saved.source} (${saved.images} images, ${saved.identities} identities); ` +
      `${path} differs (${diff}); pass --allow-data-change to continue on it anyway (no longer an exact continuation)`,
  );
}

/** The backbone options a configuration implies (f_q, f_k and every replica build from these). */
export function backboneOptions(c: TrainConfig): BackboneOptions {
  return { inputSize: c.inputSize, widthMultiplier: c.widthMultiplier, embeddingSize: c.embeddingSize, dropout: c.dropout, seed: c.seed, ...(c.mbfScale !== undefined ? { mbfScale: c.mbfScale } : {}) };
}

function resolveConfig(raw: Partial<TrainConfigInput> | null, resume: string | undefined): ResolvedConfig {
  if (!resume) return { config: parseTrainConfig(withInitArchitecture(raw ?? {})), resumed: null, autoResume: '', restartOverwrites: false };
  const from = resolveCheckpoint(resume);
  const checkpoint = loadCheckpoint(from);
  // The run continues with the configuration it was started with; `raw` may change only the keys
  // that do not alter the training (RESUME_MUTABLE_KEYS). Outputs go to the checkpoint's run folder
  // unless `output` is given, so a moved or copied run keeps writing next to its checkpoints.
  const runDir = path.basename(path.dirname(from)) === 'checkpoints' ? path.dirname(path.dirname(from)) : undefined;
  const config = resumedTrainConfig(runDir && raw?.output === undefined ? { ...(checkpoint.json.config as object), output: runDir } : checkpoint.json.config, raw, from);
  return { config, resumed: { from, checkpoint }, autoResume: '', restartOverwrites: false };
}

/**
 * Replicas for this run and, when there is only one on WASM, why. Data parallelism is WASM's way to use
 * the cores (native backends thread their kernels). 'auto' takes it only when the trainer is the one
 * choosing the engine (a caller that initialised it keeps its choice).
 */
function planParallelism(c: TrainConfig, backend: EngineInfo['backend']): { replicas: number; reason: string } {
  const cores = os.cpus().length;
  const replicas = c.replicas ?? Math.max(2, cores);
  const fits = c.batchSize >= 2 * replicas;
  if (backend !== 'wasm') {
    if (c.parallel === 'data') throw new AttfcError(`parallel = "data" needs the wasm backend, but the backend is ${backend}; use parallel "threads"`);
    return { replicas: 1, reason: `backend ${backend}` };
  }
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
