// Run planning: everything decided before a model is built. The configuration (fresh, or the one saved
// in the checkpoint being resumed), the number of data-parallel replicas, the engine, and the run's size
// (identities, images, steps). Builds no tensors.
import os from 'node:os';
import path from 'node:path';
import { initEngine, chooseBackend, engineInfo, type EngineInfo } from '../engine/index.js';
import type { BackboneOptions } from '../backbones/index.js';
import { openDataset } from '../data/dataset.js';
import { SyntheticDataset } from '../data/synthetic/source.js';
import type { ResolvedSynthOptions } from '../data/synthetic/options.js';
import { datasetFingerprint, fingerprintDifferences, type DatasetFingerprint } from '../data/fingerprint.js';
import { AttfcError } from '../errors.js';
import { parseTrainConfig, resumedTrainConfig, type TrainConfig, type TrainConfigInput } from './config.js';
import { loadCheckpoint, resolveCheckpoint, type CheckpointData } from './checkpoint.js';
import { splitRows } from './dataParallel/shared.js';
import { withInitArchitecture } from './initFrom.js';

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
}

export async function planRun(raw: Partial<TrainConfigInput> | null, resume: string | undefined, allowDataChange = false): Promise<RunPlan> {
  const { config: c, resumed } = resolveConfig(raw, resume);
  const parallel = planParallelism(c, await chooseBackend());
  const engine = await initEngine(parallel.replicas > 1 ? { threads: 1 } : {});
  if (parallel.replicas > 1 && engine.backend !== 'wasm') {
    if (c.parallel === 'data') throw new AttfcError(`parallel = "data" needs the wasm backend, but the backend is ${engine.backend}; use parallel "threads"`);
    parallel.replicas = 1;
    parallel.reason = `backend ${engine.backend}`;
  }
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
  const stepsPerEpoch = Math.floor(numImages / c.batchSize);
  return {
    config: c,
    resumed,
    engine,
    replicas: parallel.replicas,
    parallelReason: parallel.reason,
    localBatch: splitRows(c.batchSize, parallel.replicas)[0][1],
    keysPerSample: c.head === 'attfc' ? c.sampleNum - 1 : 0,
    numClasses,
    numImages,
    totalSteps: c.steps ?? Math.max(1, Math.round(c.epochs * stepsPerEpoch)),
    data,
    dataChange,
    synthetic,
  };
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

function resolveConfig(raw: Partial<TrainConfigInput> | null, resume: string | undefined): { config: TrainConfig; resumed: RunPlan['resumed'] } {
  if (!resume) return { config: parseTrainConfig(withInitArchitecture(raw ?? {})), resumed: null };
  const from = resolveCheckpoint(resume);
  const checkpoint = loadCheckpoint(from);
  // The run continues with the configuration it was started with; `raw` may change only the keys
  // that do not alter the training (RESUME_MUTABLE_KEYS). Outputs go to the checkpoint's run folder
  // unless `output` is given, so a moved or copied run keeps writing next to its checkpoints.
  const runDir = path.basename(path.dirname(from)) === 'checkpoints' ? path.dirname(path.dirname(from)) : undefined;
  const config = resumedTrainConfig(runDir && raw?.output === undefined ? { ...(checkpoint.json.config as object), output: runDir } : checkpoint.json.config, raw, from);
  return { config, resumed: { from, checkpoint } };
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
